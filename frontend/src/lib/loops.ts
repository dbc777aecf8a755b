// FOREACH steps on the canvas and the run monitor (pure, tested without a DOM): what a loop
// runs, and the state of each of its iterations from the run's steps and sequences. An
// iteration of loop `each` is the sequence `each[3]`; its body's steps are `charge[3]`…

import type { EventSpec, JsonObject } from './spec';

export interface LoopSummary {
  items: string;
  body: EventSpec[];
  maxConcurrency: number;
}

/** The loop of a FOREACH event (null for any other event or a malformed loop). */
export function loopOf(event: EventSpec): LoopSummary | null {
  if (event.type !== 'FOREACH' || !event.loop) return null;
  const body = Array.isArray(event.loop.body) ? event.loop.body : [];
  const max = event.loop.max_concurrency;
  return { items: typeof event.loop.items === 'string' ? event.loop.items : '', body, maxConcurrency: typeof max === 'number' && max >= 1 ? max : 1 };
}

export function bodyTags(event: EventSpec): string[] {
  return (loopOf(event)?.body ?? []).map((b) => b.tag || b.event);
}

/** A fresh loop for the palette: one CODE step over `$Input{items}`. */
export function newLoop(): JsonObject {
  return { items: '$Input{items}', body: [{ type: 'CODE', event: 'package.module:function', tag: 'each-item', input: { item: '$Item' } }] };
}

export type IterationState = 'pending' | 'running' | 'completed' | 'failed' | 'rolled_back' | 'cancelled';

const DONE = new Set(['completed', 'skipped', 'failed_allowed']);
const ACTIVE = new Set(['running', 'retrying', 'waiting']);

/**
 * The state of each iteration of loop `loopTag`, in item order. `total` is the number of
 * items when known (the step's journal said so); iterations seen in `steps`/`sequences`
 * beyond it are shown too.
 */
export function iterationStates(
  loopTag: string,
  body: readonly string[],
  steps: Readonly<Record<string, { status: string } | undefined>>,
  sequences: Readonly<Record<string, string | undefined>>,
  total = 0,
): IterationState[] {
  let count = total;
  const prefix = `${loopTag}[`;
  for (const tag of Object.keys(sequences)) {
    if (tag.startsWith(prefix) && tag.endsWith(']')) count = Math.max(count, Number(tag.slice(prefix.length, -1)) + 1 || 0);
  }
  const out: IterationState[] = [];
  for (let i = 0; i < count; i += 1) {
    const statuses = body.map((b) => steps[`${b}[${i}]`]?.status ?? 'pending');
    const seq = sequences[`${loopTag}[${i}]`];
    if (statuses.some((s) => s === 'failed')) out.push('failed');
    else if (statuses.some((s) => s === 'rolled_back')) out.push('rolled_back');
    else if (statuses.length && statuses.every((s) => DONE.has(s))) out.push('completed');
    else if (seq === 'cancelled' || statuses.some((s) => s === 'cancelled')) out.push('cancelled');
    else if (statuses.some((s) => ACTIVE.has(s)) || seq === 'started' || seq === 'running') out.push('running');
    else out.push('pending');
  }
  return out;
}

/** `3/5 done · 1 running` */
export function iterationSummary(states: readonly IterationState[]): string {
  if (!states.length) return 'no iterations';
  const count = (s: IterationState) => states.filter((x) => x === s).length;
  const parts = [`${count('completed')}/${states.length} done`];
  for (const s of ['running', 'failed', 'rolled_back', 'cancelled'] as const) if (count(s)) parts.push(`${count(s)} ${s.replace('_', ' ')}`);
  return parts.join(' · ');
}
