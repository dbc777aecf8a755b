// The canvas state: one zustand store per canvas, made by a factory (the editor, each side of
// a diff, the run monitor). The spec is the truth; nodes and edges are derived from it and
// rebuilt only where something changed. Every spec change goes through `commit`, which keeps
// the undo history.

import type { EdgeChange, NodeChange } from '@xyflow/react';
import { createStore, type StoreApi } from 'zustand/vanilla';

import { diffMarks, edgeMarks, type SpecDiff } from '../lib/diff';
import * as edits from '../lib/edits';
import {
  edgeId,
  specToEdges,
  specToNodes,
  type Change,
  type ParentEdge,
  type SequenceNode,
} from '../lib/graph';
import { computeLevels, type Levels } from '../lib/levels';
import { nodePositions } from '../lib/layout';
import { indexIssues, type Issue, type IssueIndex } from '../lib/paths';
import type { Direction, EventSpec, Point, SequenceSpec, WorkflowSpec } from '../lib/spec';

export type SaveState = 'saved' | 'saving' | 'unsaved' | 'error';
export type ValidationState = 'idle' | 'pending' | 'ok' | 'invalid' | 'error';
export type EventRef = { seq: string; index: number };

const HISTORY_LIMIT = 200;
const COALESCE_MS = 1200;

export interface Clipboard {
  sequences: SequenceSpec[];
  positions: Record<string, Point>;
  event: EventSpec | null;
}

export interface EditorData {
  spec: WorkflowSpec;
  readOnly: boolean;
  /** Bumped on every spec change (autosave/validation watch it). */
  revision: number;
  past: WorkflowSpec[];
  future: WorkflowSpec[];
  lastCommit: { key: string; at: number } | null;
  selected: Set<string>;
  selectedEdges: Set<string>;
  selectedEvent: EventRef | null;
  issues: Issue[];
  issueIndex: IssueIndex;
  validation: ValidationState;
  save: SaveState;
  saveError: string;
  levels: Levels;
  diff: { spec: SpecDiff; side: 'left' | 'right' } | null;
  /** Run monitor: status by step tag (the live view sets it). */
  stepStatus: Record<string, string> | null;
  nodes: SequenceNode[];
  edges: ParentEdge[];
  /** Set when the graph wants the view re-fitted (after a layout); the canvas clears it. */
  fitRequest: number;
}

export interface EditorActions {
  commit(next: WorkflowSpec, options?: { key?: string }): void;
  undo(): void;
  redo(): void;
  canUndo(): boolean;
  canRedo(): boolean;
  /** Replace the whole spec without history (loading a draft, showing a version). */
  load(spec: WorkflowSpec): void;

  onNodesChange(changes: NodeChange<SequenceNode>[]): void;
  onEdgesChange(changes: EdgeChange<ParentEdge>[]): void;
  commitPositions(moved: { id: string; position: Point }[]): void;

  selectSequences(tags: string[], additive?: boolean): void;
  selectEvent(ref: EventRef | null): void;
  selectAll(): void;
  clearSelection(): void;

  addSequence(options?: { events?: EventSpec[]; position?: Point; parents?: string[] }): string;
  insertEvent(seq: string, event: EventSpec, index?: number): void;
  moveEvent(from: EventRef, toSeq: string, toIndex: number): void;
  moveEventToNewSequence(from: EventRef, position: Point): void;
  updateEvent(ref: EventRef, patch: Partial<EventSpec>, key?: string): void;
  updateSequence(tag: string, patch: Partial<Omit<SequenceSpec, 'tag' | 'events'>>, key?: string): void;
  renameSequence(from: string, to: string): boolean;
  /** A step's new tag, followed in every reference to it. */
  renameStep(ref: EventRef, to: string): void;
  connect(parent: string, child: string): void;
  disconnect(parent: string, child: string): void;
  deleteSelection(): void;

  copy(clipboard?: Clipboard): Clipboard | null;
  paste(clipboard?: Clipboard | null): void;
  clipboard: Clipboard | null;

  setDirection(direction: Direction): void;
  /** Forget manual positions: back to the level layout. */
  resetLayout(): void;
  applyPositions(positions: Record<string, Point>): void;
  requestFit(): void;

  setIssues(issues: Issue[], validation: ValidationState): void;
  setValidation(validation: ValidationState): void;
  setSave(save: SaveState, error?: string): void;
  setStepStatus(status: Record<string, string> | null): void;
}

export type EditorState = EditorData & EditorActions;
export type EditorStore = StoreApi<EditorState>;

function sanitizeSelection(spec: WorkflowSpec, s: Pick<EditorData, 'selected' | 'selectedEdges' | 'selectedEvent'>) {
  const tags = new Set(spec.sequences.map((q) => q.tag));
  const selected = new Set([...s.selected].filter((t) => tags.has(t)));
  const edgeIds = new Set<string>();
  for (const q of spec.sequences) for (const p of q.parents) edgeIds.add(edgeId(p, q.tag));
  const selectedEdges = new Set([...s.selectedEdges].filter((e) => edgeIds.has(e)));
  let selectedEvent = s.selectedEvent;
  if (selectedEvent) {
    const seq = spec.sequences.find((q) => q.tag === selectedEvent!.seq);
    if (!seq || selectedEvent.index >= seq.events.length) selectedEvent = null;
  }
  const same =
    selected.size === s.selected.size && selectedEdges.size === s.selectedEdges.size && selectedEvent === s.selectedEvent;
  return same ? { selected: s.selected, selectedEdges: s.selectedEdges, selectedEvent: s.selectedEvent } : { selected, selectedEdges, selectedEvent };
}

export interface EditorOptions {
  spec: WorkflowSpec;
  readOnly?: boolean;
  diff?: { spec: SpecDiff; side: 'left' | 'right' } | null;
}

export function createEditorStore(options: EditorOptions): EditorStore {
  return createStore<EditorState>()((set, get) => {
    /** Rebuild nodes/edges from the parts of state that feed them. */
    const derive = (s: EditorData): Pick<EditorData, 'nodes' | 'edges' | 'levels'> => {
      const levels = s.levels && s.spec.sequences === get()?.spec.sequences ? s.levels : computeLevels(s.spec.sequences);
      const prev = { nodes: s.nodes, edges: s.edges };
      const diffData = s.diff ? diffMarks(s.diff.spec, s.diff.side) : undefined;
      const nodes = specToNodes(s.spec, {
        levels,
        readOnly: s.readOnly,
        selected: s.selected,
        selectedEvent: s.selectedEvent,
        issues: s.issueIndex.bySequence,
        diff: diffData ? cachedDiff(diffData) : undefined,
        stepStatus: s.stepStatus ?? undefined,
        prev,
      });
      const edges = specToEdges(s.spec, {
        readOnly: s.readOnly,
        selectedEdges: s.selectedEdges,
        edgeChanges: s.diff ? edgeMarks(s.diff.spec, s.diff.side) : undefined,
        prev,
      });
      return { nodes, edges, levels };
    };
    // Diff marks are computed once per store; keep their identities stable across derives.
    let diffCache: Map<string, { change: Change; events: Change[] }> | null = null;
    const cachedDiff = (marks: Map<string, { change: Change; events: Change[] }>) => {
      if (!diffCache) diffCache = marks;
      return diffCache;
    };

    /** Merge a partial state and re-derive the graph. */
    const update = (partial: Partial<EditorData>): void => {
      const next = { ...get(), ...partial } as EditorData;
      set({ ...partial, ...derive(next) });
    };

    const commit = (nextSpec: WorkflowSpec, opts: { key?: string } = {}): void => {
      const s = get();
      if (s.readOnly || nextSpec === s.spec) return;
      const now = Date.now();
      const coalesce = opts.key !== undefined && s.lastCommit?.key === opts.key && now - s.lastCommit.at < COALESCE_MS;
      const past = coalesce ? s.past : [...s.past, s.spec].slice(-HISTORY_LIMIT);
      const issueIndex = indexIssues(nextSpec, s.issues);
      update({
        spec: nextSpec,
        past,
        future: [],
        lastCommit: opts.key !== undefined ? { key: opts.key, at: now } : null,
        revision: s.revision + 1,
        save: 'unsaved',
        issueIndex,
        ...sanitizeSelection(nextSpec, s),
      });
    };

    const spec0 = options.spec;
    const initial: EditorData = {
      spec: spec0,
      readOnly: options.readOnly ?? false,
      revision: 0,
      past: [],
      future: [],
      lastCommit: null,
      selected: new Set(),
      selectedEdges: new Set(),
      selectedEvent: null,
      issues: [],
      issueIndex: indexIssues(spec0, []),
      validation: 'idle',
      save: 'saved',
      saveError: '',
      levels: computeLevels(spec0.sequences),
      diff: options.diff ?? null,
      stepStatus: null,
      nodes: [],
      edges: [],
      fitRequest: 0,
    };

    const actions: EditorActions = {
      commit,
      clipboard: null,
      undo() {
        const s = get();
        const previous = s.past[s.past.length - 1];
        if (!previous || s.readOnly) return;
        update({
          spec: previous,
          past: s.past.slice(0, -1),
          future: [...s.future, s.spec],
          lastCommit: null,
          revision: s.revision + 1,
          save: 'unsaved',
          issueIndex: indexIssues(previous, s.issues),
          ...sanitizeSelection(previous, s),
        });
      },
      redo() {
        const s = get();
        const next = s.future[s.future.length - 1];
        if (!next || s.readOnly) return;
        update({
          spec: next,
          past: [...s.past, s.spec],
          future: s.future.slice(0, -1),
          lastCommit: null,
          revision: s.revision + 1,
          save: 'unsaved',
          issueIndex: indexIssues(next, s.issues),
          ...sanitizeSelection(next, s),
        });
      },
      canUndo: () => get().past.length > 0 && !get().readOnly,
      canRedo: () => get().future.length > 0 && !get().readOnly,
      load(spec) {
        const s = get();
        update({
          spec,
          past: [],
          future: [],
          lastCommit: null,
          issueIndex: indexIssues(spec, s.issues),
          ...sanitizeSelection(spec, s),
          fitRequest: s.fitRequest + 1,
        });
      },

      onNodesChange(changes) {
        const s = get();
        let selected: Set<string> | null = null;
        let moved: Map<string, Point> | null = null;
        let measured: Map<string, { width: number; height: number }> | null = null;
        for (const change of changes) {
          if (change.type === 'select') {
            selected ??= new Set(s.selected);
            if (change.selected) selected.add(change.id);
            else selected.delete(change.id);
          } else if (change.type === 'position' && change.position && !s.readOnly) {
            moved ??= new Map();
            moved.set(change.id, change.position);
          } else if (change.type === 'dimensions' && change.dimensions) {
            measured ??= new Map();
            measured.set(change.id, change.dimensions);
          }
        }
        if (moved || measured) {
          // Dragging: move the nodes only; the spec learns the positions on drag stop.
          const nodes = s.nodes.map((n) => {
            const p = moved?.get(n.id);
            const m = measured?.get(n.id);
            if (!p && !m) return n;
            return { ...n, ...(p ? { position: p } : {}), ...(m ? { measured: m } : {}) };
          });
          set({ nodes });
        }
        if (selected) {
          const same = selected.size === s.selected.size && [...selected].every((t) => s.selected.has(t));
          if (!same) {
            const keepEvent = s.selectedEvent && selected.has(s.selectedEvent.seq) ? s.selectedEvent : null;
            update({ selected, selectedEvent: keepEvent });
          }
        }
      },
      onEdgesChange(changes) {
        const s = get();
        let selectedEdges: Set<string> | null = null;
        for (const change of changes) {
          if (change.type === 'select') {
            selectedEdges ??= new Set(s.selectedEdges);
            if (change.selected) selectedEdges.add(change.id);
            else selectedEdges.delete(change.id);
          }
        }
        if (selectedEdges) update({ selectedEdges });
      },
      commitPositions(moved) {
        const s = get();
        const positions: Record<string, Point> = {};
        for (const m of moved) positions[m.id] = m.position;
        const next = edits.setPositions(s.spec, positions);
        if (next === s.spec) update({});
        else commit(next);
      },

      selectSequences(tags, additive = false) {
        const s = get();
        const selected = additive ? new Set([...s.selected, ...tags]) : new Set(tags);
        update({ selected, selectedEdges: additive ? s.selectedEdges : new Set(), selectedEvent: additive ? s.selectedEvent : null });
      },
      selectEvent(ref) {
        if (!ref) {
          update({ selectedEvent: null });
          return;
        }
        update({ selectedEvent: ref, selected: new Set([ref.seq]), selectedEdges: new Set() });
      },
      selectAll() {
        const s = get();
        update({ selected: new Set(s.nodes.map((n) => n.id)), selectedEdges: new Set(s.edges.map((e) => e.id)), selectedEvent: null });
      },
      clearSelection() {
        update({ selected: new Set(), selectedEdges: new Set(), selectedEvent: null });
      },

      addSequence(opts = {}) {
        const s = get();
        if (s.readOnly) return '';
        const result = edits.addSequence(s.spec, opts);
        commit(result.spec);
        update({ selected: new Set([result.tag]), selectedEdges: new Set(), selectedEvent: opts.events?.length ? { seq: result.tag, index: 0 } : null });
        return result.tag;
      },
      insertEvent(seq, event, index) {
        const s = get();
        const next = edits.insertEvent(s.spec, seq, event, index);
        commit(next);
        const target = next.sequences.find((q) => q.tag === seq);
        if (target) {
          const at = Math.max(0, Math.min(index ?? target.events.length - 1, target.events.length - 1));
          update({ selectedEvent: { seq, index: at }, selected: new Set([seq]), selectedEdges: new Set() });
        }
      },
      moveEvent(from, toSeq, toIndex) {
        const s = get();
        const next = edits.moveEvent(s.spec, from, toSeq, toIndex);
        if (next === s.spec) return;
        commit(next);
        const at = from.seq === toSeq && toIndex > from.index ? toIndex - 1 : toIndex;
        const target = next.sequences.find((q) => q.tag === toSeq);
        if (target) update({ selectedEvent: { seq: toSeq, index: Math.min(at, target.events.length - 1) }, selected: new Set([toSeq]) });
      },
      moveEventToNewSequence(from, position) {
        const s = get();
        const seq = s.spec.sequences.find((q) => q.tag === from.seq);
        const event = seq?.events[from.index];
        if (!event || s.readOnly) return;
        const removed = edits.removeEvent(s.spec, from.seq, from.index);
        // The event's own tag is free again once removed, so it keeps it.
        const added = edits.addSequence(removed, { position, events: [event] });
        commit(added.spec);
        update({ selected: new Set([added.tag]), selectedEvent: { seq: added.tag, index: 0 } });
      },
      updateEvent(ref, patch, key) {
        commit(edits.updateEvent(get().spec, ref.seq, ref.index, patch), { key: key ?? `event:${ref.seq}:${ref.index}:${Object.keys(patch).join(',')}` });
      },
      updateSequence(tag, patch, key) {
        commit(edits.updateSequence(get().spec, tag, patch), { key: key ?? `seq:${tag}:${Object.keys(patch).join(',')}` });
      },
      renameSequence(from, to) {
        const s = get();
        const next = edits.renameSequence(s.spec, from, to);
        if (next === s.spec) return false;
        const selected = new Set([...s.selected].map((t) => (t === from ? to : t)));
        const selectedEvent = s.selectedEvent?.seq === from ? { ...s.selectedEvent, seq: to } : s.selectedEvent;
        // Selection first, so the commit's sanitizing keeps it.
        set({ selected, selectedEvent });
        commit(next);
        return true;
      },
      renameStep(ref, to) {
        commit(edits.renameStep(get().spec, ref.seq, ref.index, to));
      },
      connect(parent, child) {
        commit(edits.connect(get().spec, parent, child));
      },
      disconnect(parent, child) {
        commit(edits.disconnect(get().spec, parent, child));
      },
      deleteSelection() {
        const s = get();
        if (s.readOnly) return;
        let next = s.spec;
        const onlyEvent = s.selectedEvent && s.selected.size <= 1 && s.selectedEdges.size === 0;
        if (onlyEvent && s.selectedEvent) {
          next = edits.removeEvent(next, s.selectedEvent.seq, s.selectedEvent.index);
          commit(next);
          return;
        }
        for (const id of s.selectedEdges) {
          const edge = s.edges.find((e) => e.id === id);
          if (edge) next = edits.disconnect(next, edge.source, edge.target);
        }
        next = edits.removeSequences(next, s.selected);
        commit(next);
      },

      copy(into) {
        const s = get();
        if (s.selectedEvent && s.selected.size <= 1) {
          const ev = s.spec.sequences.find((q) => q.tag === s.selectedEvent!.seq)?.events[s.selectedEvent.index];
          if (ev) {
            const clip: Clipboard = { sequences: [], positions: {}, event: structuredClone(ev) };
            set({ clipboard: clip });
            return clip;
          }
        }
        const copied = s.spec.sequences.filter((q) => s.selected.has(q.tag));
        if (!copied.length) return into ?? null;
        const positions: Record<string, Point> = {};
        for (const n of s.nodes) if (s.selected.has(n.id)) positions[n.id] = n.position;
        const clip: Clipboard = { sequences: structuredClone(copied), positions, event: null };
        set({ clipboard: clip });
        return clip;
      },
      paste(given) {
        const s = get();
        const clip = given ?? s.clipboard;
        if (!clip || s.readOnly) return;
        if (clip.event) {
          const target = s.selectedEvent?.seq ?? [...s.selected][0];
          if (target) {
            const index = s.selectedEvent ? s.selectedEvent.index + 1 : undefined;
            actions.insertEvent(target, structuredClone(clip.event), index);
          } else {
            actions.addSequence({ events: [structuredClone(clip.event)] });
          }
          return;
        }
        if (!clip.sequences.length) return;
        const result = edits.pasteSequences(s.spec, clip.sequences, clip.positions, { x: 40, y: 40 });
        commit(result.spec);
        update({ selected: new Set(result.tags), selectedEdges: new Set(), selectedEvent: null });
        // Paste again → another 40px further.
        const shifted: Record<string, Point> = {};
        for (const [t, p] of Object.entries(clip.positions)) shifted[t] = { x: p.x + 40, y: p.y + 40 };
        set({ clipboard: { ...clip, positions: shifted } });
      },

      setDirection(direction) {
        const s = get();
        if (s.spec.layout.direction === direction) return;
        commit({ ...s.spec, layout: { positions: {}, direction } });
        update({ fitRequest: get().fitRequest + 1 });
      },
      resetLayout() {
        const s = get();
        if (Object.keys(s.spec.layout.positions).length === 0) {
          update({ fitRequest: s.fitRequest + 1 });
          return;
        }
        commit({ ...s.spec, layout: { ...s.spec.layout, positions: {} } });
        update({ fitRequest: get().fitRequest + 1 });
      },
      applyPositions(positions) {
        const s = get();
        if (s.readOnly) {
          // A read-only view may still be arranged; it is just not saved.
          const spec = { ...s.spec, layout: { ...s.spec.layout, positions } };
          update({ spec, fitRequest: s.fitRequest + 1 });
          return;
        }
        commit(edits.setPositions(s.spec, positions));
        update({ fitRequest: get().fitRequest + 1 });
      },
      requestFit() {
        set({ fitRequest: get().fitRequest + 1 });
      },

      setIssues(issues, validation) {
        update({ issues, issueIndex: indexIssues(get().spec, issues), validation });
      },
      setValidation(validation) {
        set({ validation });
      },
      setSave(save, error = '') {
        set({ save, saveError: error });
      },
      setStepStatus(status) {
        update({ stepStatus: status });
      },
    };

    const state: EditorState = { ...initial, ...actions };
    const derived = (() => {
      const levels = initial.levels;
      const diffData = initial.diff ? diffMarks(initial.diff.spec, initial.diff.side) : undefined;
      if (diffData) diffCache = diffData;
      return {
        nodes: specToNodes(spec0, { levels, readOnly: initial.readOnly, diff: diffData }),
        edges: specToEdges(spec0, {
          readOnly: initial.readOnly,
          edgeChanges: initial.diff ? edgeMarks(initial.diff.spec, initial.diff.side) : undefined,
        }),
      };
    })();
    return { ...state, ...derived };
  });
}

/** The drawn position of every sequence (manual or by level), e.g. for copy or ELK seeds. */
export function currentPositions(state: EditorData): Map<string, Point> {
  return nodePositions(state.spec, state.levels);
}
