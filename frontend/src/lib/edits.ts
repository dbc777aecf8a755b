// Every canvas edit as a pure function spec → spec (new objects only where something
// changed, so unchanged sequences keep their identity and their nodes stay memoized).

import { canConnect } from './graph';
import type { EventSpec, Point, SequenceSpec, WorkflowSpec } from './spec';
import { allStepTags, sequenceTags, stepTag, uniqueTag } from './spec';

function replaceSequence(spec: WorkflowSpec, tag: string, fn: (seq: SequenceSpec) => SequenceSpec): WorkflowSpec {
  let changed = false;
  const sequences = spec.sequences.map((seq) => {
    if (seq.tag !== tag) return seq;
    const next = fn(seq);
    if (next !== seq) changed = true;
    return next;
  });
  return changed ? { ...spec, sequences } : spec;
}

/** An event with a step tag that is unique in the workflow. */
export function withUniqueTag(spec: WorkflowSpec, event: EventSpec, taken: Set<string> = allStepTags(spec)): EventSpec {
  const base = stepTag(event) || event.type.toLowerCase();
  const tag = uniqueTag(base, taken);
  taken.add(tag);
  return { ...event, tag };
}

export function addSequence(
  spec: WorkflowSpec,
  options: { tag?: string; events?: EventSpec[]; parents?: string[]; position?: Point } = {},
): { spec: WorkflowSpec; tag: string } {
  const tag = uniqueTag(options.tag ?? `sequence_${spec.sequences.length + 1}`, sequenceTags(spec));
  const taken = allStepTags(spec);
  const events = (options.events ?? []).map((e) => withUniqueTag(spec, e, taken));
  const seq: SequenceSpec = { tag, parents: options.parents ?? [], events };
  const positions = options.position ? { ...spec.layout.positions, [tag]: options.position } : spec.layout.positions;
  return {
    spec: { ...spec, sequences: [...spec.sequences, seq], layout: { ...spec.layout, positions } },
    tag,
  };
}

/** Insert `event` into sequence `tag` at `index` (clamped; default: append). */
export function insertEvent(spec: WorkflowSpec, tag: string, event: EventSpec, index?: number): WorkflowSpec {
  const unique = withUniqueTag(spec, event);
  return replaceSequence(spec, tag, (seq) => {
    const at = Math.max(0, Math.min(index ?? seq.events.length, seq.events.length));
    const events = [...seq.events.slice(0, at), unique, ...seq.events.slice(at)];
    return { ...seq, events };
  });
}

/**
 * Move event `from.index` of `from.seq` to position `toIndex` of `toSeq` (the index as seen
 * before the move, i.e. where the drop indicator was drawn).
 */
export function moveEvent(spec: WorkflowSpec, from: { seq: string; index: number }, toSeq: string, toIndex: number): WorkflowSpec {
  const source = spec.sequences.find((s) => s.tag === from.seq);
  const event = source?.events[from.index];
  if (!source || !event || !spec.sequences.some((s) => s.tag === toSeq)) return spec;
  if (from.seq === toSeq) {
    const at = toIndex > from.index ? toIndex - 1 : toIndex;
    if (at === from.index) return spec;
    return replaceSequence(spec, toSeq, (seq) => {
      const events = seq.events.filter((_, i) => i !== from.index);
      events.splice(Math.max(0, Math.min(at, events.length)), 0, event);
      return { ...seq, events };
    });
  }
  const removed = replaceSequence(spec, from.seq, (seq) => ({ ...seq, events: seq.events.filter((_, i) => i !== from.index) }));
  return replaceSequence(removed, toSeq, (seq) => {
    const at = Math.max(0, Math.min(toIndex, seq.events.length));
    return { ...seq, events: [...seq.events.slice(0, at), event, ...seq.events.slice(at)] };
  });
}

export function removeEvent(spec: WorkflowSpec, tag: string, index: number): WorkflowSpec {
  return replaceSequence(spec, tag, (seq) =>
    index < 0 || index >= seq.events.length ? seq : { ...seq, events: seq.events.filter((_, i) => i !== index) },
  );
}

export function updateEvent(spec: WorkflowSpec, tag: string, index: number, patch: Partial<EventSpec>): WorkflowSpec {
  return replaceSequence(spec, tag, (seq) => {
    const old = seq.events[index];
    if (!old) return seq;
    const next: EventSpec = { ...old, ...patch };
    // Optional fields cleared in the inspector are dropped, not saved as undefined/null.
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
    }
    const events = [...seq.events];
    events[index] = next;
    return { ...seq, events };
  });
}

/** Sequences removed, along with the parent links and positions that name them. */
export function removeSequences(spec: WorkflowSpec, tags: ReadonlySet<string>): WorkflowSpec {
  if (tags.size === 0) return spec;
  const sequences = spec.sequences
    .filter((s) => !tags.has(s.tag))
    .map((s) => (s.parents.some((p) => tags.has(p)) ? { ...s, parents: s.parents.filter((p) => !tags.has(p)) } : s));
  const positions = Object.fromEntries(Object.entries(spec.layout.positions).filter(([t]) => !tags.has(t)));
  return { ...spec, sequences, layout: { ...spec.layout, positions } };
}

export function connect(spec: WorkflowSpec, parent: string, child: string): WorkflowSpec {
  if (!canConnect(spec, parent, child)) return spec;
  return replaceSequence(spec, child, (seq) => ({ ...seq, parents: [...seq.parents, parent] }));
}

export function disconnect(spec: WorkflowSpec, parent: string, child: string): WorkflowSpec {
  return replaceSequence(spec, child, (seq) =>
    seq.parents.includes(parent) ? { ...seq, parents: seq.parents.filter((p) => p !== parent) } : seq,
  );
}

/** Every string in `value` with each `from` text replaced by its `to` (objects and arrays
 * rebuilt only where something changed, so untouched parts stay identical). */
export function replaceInStrings<T>(value: T, replacements: [string, string][]): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      let out = v;
      for (const [from, to] of replacements) if (out.includes(from)) out = out.split(from).join(to);
      return out;
    }
    if (Array.isArray(v)) {
      const items = v.map(walk);
      return items.some((item, i) => item !== v[i]) ? items : v;
    }
    if (v && typeof v === 'object') {
      const entries = Object.entries(v).map(([k, item]) => [k, walk(item)] as const);
      const changed = entries.some(([k, item]) => item !== (v as Record<string, unknown>)[k]);
      return changed ? Object.fromEntries(entries) : v;
    }
    return v;
  };
  return walk(value) as T;
}

/** References in the spec (inputs, conditions, skip_if, output…, not the layout) renamed. */
function renameReferences(spec: WorkflowSpec, replacements: [string, string][]): WorkflowSpec {
  const { layout, ...rest } = spec;
  const renamed = replaceInStrings(rest, replacements);
  return renamed === rest ? spec : { ...renamed, layout };
}

/** Rename a sequence, following the rename in parents, positions and every
 * `$Sequence{tag}…` reference. */
export function renameSequence(spec: WorkflowSpec, from: string, to: string): WorkflowSpec {
  if (from === to || !to || sequenceTags(spec).has(to)) return spec;
  const sequences = spec.sequences.map((s) => {
    let next = s;
    if (s.tag === from) next = { ...next, tag: to };
    if (s.parents.includes(from)) next = { ...next, parents: s.parents.map((p) => (p === from ? to : p)) };
    return next;
  });
  const positions: Record<string, Point> = {};
  for (const [t, p] of Object.entries(spec.layout.positions)) positions[t === from ? to : t] = p;
  const renamed = { ...spec, sequences, layout: { ...spec.layout, positions } };
  return renameReferences(renamed, [[`$Sequence{${from}}`, `$Sequence{${to}}`]]);
}

/** Give a step a new tag, following it in every `$Step{tag}` and `$Sequence{seq}{tag}`
 * reference (one edit, so one undo). */
export function renameStep(spec: WorkflowSpec, seqTag: string, index: number, to: string): WorkflowSpec {
  const event = spec.sequences.find((s) => s.tag === seqTag)?.events[index];
  if (!event || !to) return spec;
  const from = stepTag(event);
  if (from === to) return spec;
  return renameReferences(updateEvent(spec, seqTag, index, { tag: to }), [
    [`$Step{${from}}`, `$Step{${to}}`],
    [`$Sequence{${seqTag}}{${from}}`, `$Sequence{${seqTag}}{${to}}`],
  ]);
}

export function updateSequence(spec: WorkflowSpec, tag: string, patch: Partial<Omit<SequenceSpec, 'tag' | 'events'>>): WorkflowSpec {
  return replaceSequence(spec, tag, (seq) => {
    const next = { ...seq, ...patch };
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) delete (next as unknown as Record<string, unknown>)[key];
    }
    return next;
  });
}

export function setPositions(spec: WorkflowSpec, moved: Record<string, Point>): WorkflowSpec {
  const positions = { ...spec.layout.positions };
  let changed = false;
  for (const [tag, p] of Object.entries(moved)) {
    const old = positions[tag];
    const rounded = { x: Math.round(p.x), y: Math.round(p.y) };
    if (!old || old.x !== rounded.x || old.y !== rounded.y) {
      positions[tag] = rounded;
      changed = true;
    }
  }
  return changed ? { ...spec, layout: { ...spec.layout, positions } } : spec;
}

/**
 * Paste copied sequences: new unique sequence and step tags; parents inside the copied set
 * follow the copies, parents outside it are kept; positions shifted by `offset`.
 */
export function pasteSequences(
  spec: WorkflowSpec,
  copied: readonly SequenceSpec[],
  positions: Record<string, Point>,
  offset: Point,
): { spec: WorkflowSpec; tags: string[] } {
  const seqTaken = sequenceTags(spec);
  const stepTaken = allStepTags(spec);
  const rename = new Map<string, string>();
  for (const seq of copied) {
    const tag = uniqueTag(seq.tag, seqTaken);
    seqTaken.add(tag);
    rename.set(seq.tag, tag);
  }
  const existing = sequenceTags(spec);
  const added: SequenceSpec[] = copied.map((seq) => ({
    ...seq,
    tag: rename.get(seq.tag)!,
    parents: seq.parents.map((p) => rename.get(p) ?? p).filter((p) => rename.has(p) || [...rename.values()].includes(p) || existing.has(p)),
    events: seq.events.map((e) => withUniqueTag(spec, e, stepTaken)),
    level: undefined,
  }));
  for (const seq of added) delete seq.level;
  const nextPositions = { ...spec.layout.positions };
  for (const seq of copied) {
    const p = positions[seq.tag];
    if (p) nextPositions[rename.get(seq.tag)!] = { x: Math.round(p.x + offset.x), y: Math.round(p.y + offset.y) };
  }
  return {
    spec: { ...spec, sequences: [...spec.sequences, ...added], layout: { ...spec.layout, positions: nextPositions } },
    tags: added.map((s) => s.tag),
  };
}
