// The React Flow surface shared by the editor, the diff view and the run monitor. All graph
// state lives in the canvas store; this component only wires React Flow to it.

import {
  Controls,
  MarkerType,
  ReactFlow,
  useReactFlow,
  useStoreApi,
  ViewportPortal,
  useStore as useFlowStore,
  type Connection,
  type Edge,
  type OnNodeDrag,
} from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, type DragEvent } from 'react';

import { canConnect, type SequenceNode } from '../lib/graph';
import { FAR_ZOOM } from '../lib/layout';
import { WINDOW_MIN_NODES, graphBounds, inWindow, windowKey, windowRect } from '../lib/viewport';
import { edgeTypes, nodeTypes } from '../nodes';
import { hasTrellisDrag, readMove, readNewEvent } from '../nodes/dnd';
import { useEditor, useEditorStore } from '../store/context';
import { installBench } from './bench';
import { DotGrid, FastMiniMap, StaticEdges } from './CanvasExtras';

const defaultEdgeOptions = { markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 } };
const FIT_OPTIONS = { padding: 0.15, maxZoom: 1.1 };

function minimapColor(node: SequenceNode): string {
  const data = node.data;
  if (data.diff && data.diff.change !== 'same') {
    return { added: '#16a34a', removed: '#dc2626', changed: '#d97706', moved: '#d97706', same: '#cbd5e1' }[data.diff.change];
  }
  if (data.issues?.count) return '#ef4444';
  return node.selected ? '#6366f1' : '#cbd5e1';
}

/** Semantic zoom: far out, cards drop their details (one class flip, not a re-render per frame). */
function zoomClass(s: { transform: [number, number, number] }): string {
  const z = s.transform[2];
  return z < FAR_ZOOM ? 'zoom-far' : z < 0.55 ? 'zoom-mid' : 'zoom-near';
}

export interface CanvasProps {
  /** Marks the page ready for tests and the benchmark once the first frame is drawn. */
  announceReady?: boolean;
  minimap?: boolean;
  testId?: string;
}

export function Canvas({ announceReady = false, minimap = true, testId = 'canvas' }: CanvasProps) {
  const store = useEditorStore();
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const readOnly = useEditor((s) => s.readOnly);
  const fitRequest = useEditor((s) => s.fitRequest);
  const onNodesChange = useEditor((s) => s.onNodesChange);
  const onEdgesChange = useEditor((s) => s.onEdgesChange);
  const flow = useReactFlow();
  const flowStore = useStoreApi();
  const zoom = useFlowStore(zoomClass);
  const wrapper = useRef<HTMLDivElement>(null);
  // Fit once on open, and only a graph that has something: fitting the first dropped node
  // would move the view under the user's next drop.
  const fitOnInit = useRef(nodes.length > 0).current;
  const windowed = nodes.length > WINDOW_MIN_NODES;
  const windowedAtStart = useRef(windowed).current;

  // Large graphs: only the window around the view is handed to React Flow (lib/viewport.ts).
  const key = useFlowStore((s) => (windowed ? windowKey(s.transform, s.width, s.height) : ''));
  const shown = useMemo(() => {
    if (!windowed) return { nodes, edges };
    const s = flowStore.getState();
    // Edges are drawn by <StaticEdges/> for large graphs (none handed to React Flow).
    return { nodes: inWindow(nodes, [], key === 'unmeasured' ? null : windowRect(s.transform, s.width, s.height)).nodes, edges: [] };
  }, [windowed, nodes, edges, key, flowStore]);

  const markReady = useCallback(() => {
    if (!announceReady) return;
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        (window as unknown as { __trellisReady?: number }).__trellisReady = performance.now();
        document.body.dataset.canvasReady = '1';
      }),
    );
  }, [announceReady]);

  // Fit to every sequence, not just those React Flow holds (a windowed graph gives it a part).
  const fitAll = useCallback(
    (duration: number) => {
      const all = store.getState().nodes;
      if (!all.length) return Promise.resolve(false);
      if (all.length <= WINDOW_MIN_NODES) return flow.fitView({ ...FIT_OPTIONS, duration });
      return flow.fitBounds(graphBounds(all), { padding: FIT_OPTIONS.padding, duration });
    },
    [flow, store],
  );

  useEffect(() => {
    if (fitRequest > 0) requestAnimationFrame(() => void fitAll(250));
  }, [fitRequest, fitAll]);

  // A windowed graph is fitted by hand once React Flow knows its size.
  const fittedAtStart = useRef(false);
  useEffect(() => {
    if (!windowedAtStart) return undefined;
    const tryFit = () => {
      const { width, height } = flowStore.getState();
      if (fittedAtStart.current || !width || !height) return;
      fittedAtStart.current = true;
      void fitAll(0).then(markReady);
    };
    tryFit();
    return flowStore.subscribe(tryFit);
  }, [windowedAtStart, flowStore, fitAll, markReady]);

  // The benchmark hook exists only in the bench build (`npm run build:bench`, mode "bench"):
  // in any other build this test is false at build time and bench.ts is left out.
  useEffect(
    () => (import.meta.env.MODE === 'bench' && announceReady ? installBench(flow, () => store.getState().nodes) : undefined),
    [announceReady, flow, store],
  );

  const onInit = useCallback(() => {
    if (!windowedAtStart) markReady();
  }, [windowedAtStart, markReady]);

  const onConnect = useCallback(
    (c: Connection) => {
      if (c.source && c.target) store.getState().connect(c.source, c.target);
    },
    [store],
  );

  const isValidConnection = useCallback(
    (c: Connection | Edge) => !!c.source && !!c.target && canConnect(store.getState().spec, c.source, c.target),
    [store],
  );

  const onNodeDragStop: OnNodeDrag<SequenceNode> = useCallback(
    (_e, _node, moved) => store.getState().commitPositions(moved.map((n) => ({ id: n.id, position: n.position }))),
    [store],
  );

  const onPaneClick = useCallback(() => store.getState().clearSelection(), [store]);

  const onDragOver = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      if (readOnly || !hasTrellisDrag(e.dataTransfer)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = hasTrellisDrag(e.dataTransfer) === 'move' ? 'move' : 'copy';
    },
    [readOnly],
  );

  // Dropped on the empty canvas: a new sequence there holding the event.
  const onDrop = useCallback(
    (e: DragEvent<HTMLDivElement>) => {
      if (readOnly) return;
      const kind = hasTrellisDrag(e.dataTransfer);
      if (!kind) return;
      e.preventDefault();
      const position = flow.screenToFlowPosition({ x: e.clientX, y: e.clientY });
      position.x = Math.round(position.x - 40);
      position.y = Math.round(position.y - 20);
      const s = store.getState();
      if (kind === 'move') {
        const from = readMove(e.dataTransfer);
        if (from) s.moveEventToNewSequence(from, position);
      } else {
        const event = readNewEvent(e.dataTransfer);
        if (event) s.addSequence({ events: [event], position });
      }
    },
    [readOnly, flow, store],
  );

  return (
    <div className={`canvas-wrap ${zoom}`} ref={wrapper} onDragOver={onDragOver} onDrop={onDrop} data-testid={testId}>
      <ReactFlow
        nodes={shown.nodes}
        edges={shown.edges}
        nodeTypes={nodeTypes}
        edgeTypes={edgeTypes}
        defaultEdgeOptions={defaultEdgeOptions}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={onConnect}
        isValidConnection={isValidConnection}
        onNodeDragStop={onNodeDragStop}
        onPaneClick={onPaneClick}
        onInit={onInit}
        nodesDraggable={!readOnly}
        nodesConnectable={!readOnly}
        elementsSelectable
        deleteKeyCode={null}
        selectionKeyCode="Shift"
        multiSelectionKeyCode={['Meta', 'Control', 'Shift']}
        onlyRenderVisibleElements={!windowed}
        minZoom={0.03}
        maxZoom={2}
        fitView={fitOnInit && !windowedAtStart}
        fitViewOptions={FIT_OPTIONS}
        connectionRadius={28}
      >
        <DotGrid />
        {windowed ? (
          <ViewportPortal>
            <StaticEdges />
          </ViewportPortal>
        ) : null}
        <Controls showInteractive={false} position="bottom-left" />
        {minimap ? <FastMiniMap color={minimapColor} /> : null}
      </ReactFlow>
    </div>
  );
}
