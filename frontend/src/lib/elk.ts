// ELK auto-layout on demand. elkjs is ~1.5 MB, so it is loaded only when asked for.
import { CARD_WIDTH, cardHeight } from './layout';
import type { Direction, Point, WorkflowSpec } from './spec';

export async function elkLayout(spec: WorkflowSpec, direction: Direction): Promise<Record<string, Point>> {
  const { default: ELK } = await import('elkjs/lib/elk.bundled.js');
  const elk = new ELK();
  const tags = new Set(spec.sequences.map((s) => s.tag));
  const seen = new Set<string>();
  const children = spec.sequences
    .filter((s) => (seen.has(s.tag) ? false : (seen.add(s.tag), true)))
    .map((s) => ({ id: s.tag, width: CARD_WIDTH, height: cardHeight(s) }));
  const edges = spec.sequences.flatMap((s) =>
    s.parents.filter((p) => tags.has(p) && p !== s.tag).map((p) => ({ id: `${p}->${s.tag}`, sources: [p], targets: [s.tag] })),
  );
  const result = await elk.layout({
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': direction === 'LR' ? 'RIGHT' : 'DOWN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '90',
      'elk.spacing.nodeNode': '36',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
      'elk.layered.crossingMinimization.strategy': 'LAYER_SWEEP',
    },
    children,
    edges,
  });
  const out: Record<string, Point> = {};
  for (const child of result.children ?? []) {
    out[child.id] = { x: Math.round(child.x ?? 0), y: Math.round(child.y ?? 0) };
  }
  return out;
}
