// Card geometry and the level layout (levels as columns for LR, rows for TB). Cards have a
// size known from their event count, so layout, culling and the minimap never wait for a
// DOM measurement — this is what keeps a 500-sequence graph cheap.

import type { Direction, Point, SequenceSpec, WorkflowSpec } from './spec';
import { computeLevels, levelColumns, type Levels } from './levels';

export const CARD_WIDTH = 264;
export const CARD_HEADER = 46;
export const EVENT_ROW = 30;
export const CARD_PADDING = 10;
/** Below this zoom cards drop their text (semantic zoom: cheaper and still readable). */
export const FAR_ZOOM = 0.4;
const GAP_ALONG = 80; // between levels
const GAP_ACROSS = 36; // between cards of one level

export function cardHeight(seq: Pick<SequenceSpec, 'events'>): number {
  return CARD_HEADER + Math.max(1, seq.events.length) * EVENT_ROW + CARD_PADDING;
}

/** Positions by tag from the levels alone (ignoring manual positions). */
export function levelLayout(
  sequences: readonly SequenceSpec[],
  direction: Direction,
  levels: Levels = computeLevels(sequences),
): Map<string, Point> {
  const byTag = new Map<string, SequenceSpec>();
  for (const seq of sequences) if (!byTag.has(seq.tag)) byTag.set(seq.tag, seq);
  const columns = levelColumns(sequences, levels);
  const out = new Map<string, Point>();
  if (direction === 'LR') {
    columns.forEach((column, l) => {
      const heights = column.map((tag) => cardHeight(byTag.get(tag)!));
      const total = heights.reduce((a, b) => a + b, 0) + GAP_ACROSS * Math.max(0, column.length - 1);
      let y = -total / 2;
      column.forEach((tag, i) => {
        out.set(tag, { x: l * (CARD_WIDTH + GAP_ALONG), y: Math.round(y) });
        y += heights[i]! + GAP_ACROSS;
      });
    });
  } else {
    let y = 0;
    columns.forEach((row) => {
      const width = row.length * CARD_WIDTH + GAP_ACROSS * Math.max(0, row.length - 1);
      let x = -width / 2;
      let tallest = 0;
      for (const tag of row) {
        out.set(tag, { x: Math.round(x), y });
        x += CARD_WIDTH + GAP_ACROSS;
        tallest = Math.max(tallest, cardHeight(byTag.get(tag)!));
      }
      y += tallest + GAP_ALONG * 0.6;
    });
  }
  return out;
}

/** Where each sequence is drawn: its manual position if it has one, else the level layout. */
export function nodePositions(spec: WorkflowSpec, levels?: Levels): Map<string, Point> {
  const out = levelLayout(spec.sequences, spec.layout.direction, levels);
  for (const [tag, p] of Object.entries(spec.layout.positions)) {
    if (out.has(tag)) out.set(tag, { x: p.x, y: p.y });
  }
  return out;
}
