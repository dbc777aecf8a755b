// A parent link (parent → child). Selected, it offers a button to disconnect.
import { BaseEdge, EdgeLabelRenderer, getBezierPath, type EdgeProps } from '@xyflow/react';
import { memo } from 'react';

import type { ParentEdge } from '../lib/graph';
import { useEditorStore } from '../store/context';

function ParentEdgeComponent(props: EdgeProps<ParentEdge>) {
  const { id, source, target, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, selected, data, markerEnd } = props;
  const store = useEditorStore();
  const [path, labelX, labelY] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  return (
    <>
      <BaseEdge id={id} path={path} markerEnd={markerEnd} interactionWidth={16} />
      {selected && !data?.readOnly ? (
        <EdgeLabelRenderer>
          <button
            type="button"
            className="edge-remove nodrag nopan"
            style={{ transform: `translate(-50%, -50%) translate(${labelX}px, ${labelY}px)` }}
            title={`Disconnect ${source} → ${target}`}
            data-testid={`disconnect-${source}-${target}`}
            onClick={(e) => {
              e.stopPropagation();
              store.getState().disconnect(source, target);
            }}
          >
            ×
          </button>
        </EdgeLabelRenderer>
      ) : null}
    </>
  );
}

export const ParentEdgeView = memo(ParentEdgeComponent);
