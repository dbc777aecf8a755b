// HTML5 drag-and-drop payloads shared by the palette, the cards and the canvas.
import type { EventSpec } from '../lib/spec';

/** A new event from the palette. */
export const NEW_EVENT = 'application/x-trellis-event';
/** An existing event being moved: {seq, index}. */
export const MOVE_EVENT = 'application/x-trellis-move';

export function hasTrellisDrag(dt: DataTransfer): 'new' | 'move' | null {
  const types = Array.from(dt.types);
  if (types.includes(MOVE_EVENT)) return 'move';
  if (types.includes(NEW_EVENT)) return 'new';
  return null;
}

export function readNewEvent(dt: DataTransfer): EventSpec | null {
  try {
    const raw: unknown = JSON.parse(dt.getData(NEW_EVENT));
    if (raw && typeof raw === 'object' && typeof (raw as EventSpec).type === 'string') {
      const e = raw as EventSpec;
      return { ...e, input: e.input && typeof e.input === 'object' ? e.input : {} };
    }
  } catch {
    /* not ours */
  }
  return null;
}

export function readMove(dt: DataTransfer): { seq: string; index: number } | null {
  try {
    const raw: unknown = JSON.parse(dt.getData(MOVE_EVENT));
    if (raw && typeof raw === 'object') {
      const m = raw as { seq?: unknown; index?: unknown };
      if (typeof m.seq === 'string' && typeof m.index === 'number') return { seq: m.seq, index: m.index };
    }
  } catch {
    /* not ours */
  }
  return null;
}
