import type { EdgeTypes, NodeTypes } from '@xyflow/react';

import { ParentEdgeView } from '../edges/ParentEdge';
import { SequenceNodeView } from './SequenceNode';

// Declared once, outside any component, so React Flow never sees new objects.
export const nodeTypes = { sequence: SequenceNodeView } satisfies NodeTypes;
export const edgeTypes = { parent: ParentEdgeView } satisfies EdgeTypes;
