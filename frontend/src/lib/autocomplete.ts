// Completion for the expression language inside input values, conditions and mappings:
// $Input{..}, $Step{tag}{..}, $Sequence{seq}{event}{..}, $Secret{..}, $State{..},
// $Variable{app}{..}, $Constant{app}{..}, $Default(..) and operators ($Concat(..)…).
// Step tags offered are the ones that have run before the edited event on every path.

import { ancestors } from './graph';
import type { JsonObject, WorkflowSpec } from './spec';
import { stepTag } from './spec';

export interface Suggestion {
  label: string;
  /** Replaces text[from, to). */
  insert: string;
  detail: string;
}

export interface Completion {
  from: number;
  to: number;
  items: Suggestion[];
}

export interface CompletionContext {
  spec: WorkflowSpec;
  /** The event being edited (undefined for workflow-level fields such as the output). */
  seqTag?: string;
  eventIndex?: number;
  /** Component tags (for $Variable/$Constant). */
  components?: readonly string[];
}

export const REFERENCES: readonly { name: string; detail: string }[] = [
  { name: 'Input', detail: 'workflow input field' },
  { name: 'Step', detail: "an earlier step's output" },
  { name: 'Sequence', detail: "an ancestor sequence's event output" },
  { name: 'State', detail: 'run state (SET_STATE)' },
  { name: 'Variable', detail: 'component variable' },
  { name: 'Constant', detail: 'component constant' },
  { name: 'Secret', detail: 'secret (never logged)' },
  { name: 'Run', detail: 'run info' },
  { name: 'Now', detail: 'current time (ISO 8601)' },
  { name: 'Item', detail: "the loop's current item (FOREACH body)" },
  { name: 'Index', detail: "the loop's current index (FOREACH body)" },
];

// Mirrors runtime/expressions/_operators.py OPERATORS (name and usage).
export const OPERATORS: readonly { name: string; detail: string }[] = [
  { name: 'Default', detail: '(value, fallback)' },
  { name: 'Concat', detail: '(a, b, ...) join as text' },
  { name: 'Add', detail: '(a, b, ...)' },
  { name: 'Subtract', detail: '(a, b)' },
  { name: 'Substring', detail: '(text, start, length?)' },
  { name: 'Trim', detail: '(text)' },
  { name: 'Split', detail: '(text, separator)' },
  { name: 'Join', detail: '(array, separator)' },
  { name: 'Pick', detail: "(object, 'key.path')" },
  { name: 'Uppercase', detail: '(text)' },
  { name: 'Lowercase', detail: '(text)' },
  { name: 'Dateformat', detail: "(date, 'YYYY-MM-DD')" },
  { name: 'Size', detail: '(value)' },
  { name: 'Length', detail: '(value)' },
  { name: 'Filter', detail: "(array, 'field', '==', value)" },
  { name: 'Find', detail: "(array, 'field', '==', value)" },
];

/** Step tags that have run before event `index` of `seqTag`: ancestors' steps, then earlier ones. */
export function earlierSteps(spec: WorkflowSpec, seqTag: string | undefined, index: number | undefined): string[] {
  if (seqTag === undefined) {
    // Workflow-level fields (output, queries) may use any step.
    return spec.sequences.flatMap((s) => s.events.map(stepTag));
  }
  const before = ancestors(spec, seqTag);
  const out: string[] = [];
  for (const seq of spec.sequences) {
    if (before.has(seq.tag)) out.push(...seq.events.map(stepTag));
  }
  const own = spec.sequences.find((s) => s.tag === seqTag);
  if (own) out.push(...own.events.slice(0, index ?? own.events.length).map(stepTag));
  return [...new Set(out)];
}

/** Field names of the input schema: JSON Schema `properties` or the seed's `{field: 'string'}`. */
export function inputFields(schema: JsonObject): string[] {
  const props = schema.properties;
  if (props && typeof props === 'object' && !Array.isArray(props)) return Object.keys(props);
  return Object.keys(schema).filter((k) => !['type', 'required', '$schema', 'additionalProperties', 'title'].includes(k));
}

function stateKeys(spec: WorkflowSpec): string[] {
  const keys = new Set<string>();
  for (const seq of spec.sequences) {
    for (const ev of seq.events) {
      if (ev.type === 'SET_STATE' && typeof ev.input.key === 'string') keys.add(ev.input.key);
    }
  }
  return [...keys];
}

function filterPrefix(items: Suggestion[], prefix: string): Suggestion[] {
  const p = prefix.toLowerCase();
  return items.filter((s) => s.label.toLowerCase().startsWith(p) || (p.length > 1 && s.label.toLowerCase().includes(p)));
}

/**
 * Completions at `caret` in `text`, or null when the caret is not inside a reference.
 * The replaced span starts at the `$` so the inserted text is always whole.
 */
export function complete(text: string, caret: number, ctx: CompletionContext): Completion | null {
  const head = text.slice(0, caret);
  const dollar = head.lastIndexOf('$');
  if (dollar < 0) return null;
  const token = head.slice(dollar);
  // Still typing the name: $St|
  const name = /^\$([A-Za-z]*)$/.exec(token);
  if (name) {
    const items: Suggestion[] = [
      ...REFERENCES.map((r) => ({ label: `$${r.name}`, insert: r.name === 'Now' || r.name === 'Index' ? `$${r.name}` : `$${r.name}{`, detail: r.detail })),
      ...OPERATORS.map((o) => ({ label: `$${o.name}`, insert: `$${o.name}(`, detail: o.detail })),
    ];
    return { from: dollar, to: caret, items: filterPrefix(items, `$${name[1]}`) };
  }
  // Inside braces: $Kind{a}{b|  → args so far and the partial one.
  const braces = /^\$([A-Za-z]+)((?:\{[^{}]*\})*)\{([^{}]*)$/.exec(token);
  if (!braces) return null;
  const kind = braces[1]!;
  const done = [...braces[2]!.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1]!);
  const partial = braces[3]!;
  const prefix = `$${kind}${done.map((d) => `{${d}}`).join('')}`;
  const make = (values: string[], detail: string, close: boolean): Suggestion[] =>
    values.map((v) => ({ label: v, insert: `${prefix}{${v}}${close ? '' : '{'}`, detail }));
  let items: Suggestion[] = [];
  if (kind === 'Step' && done.length === 0) {
    items = make(earlierSteps(ctx.spec, ctx.seqTag, ctx.eventIndex), 'step', false);
  } else if (kind === 'Sequence' && done.length === 0) {
    const before = ctx.seqTag === undefined ? new Set(ctx.spec.sequences.map((s) => s.tag)) : ancestors(ctx.spec, ctx.seqTag);
    items = make([...before], 'sequence', false);
  } else if (kind === 'Sequence' && done.length === 1) {
    const seq = ctx.spec.sequences.find((s) => s.tag === done[0]);
    items = make(seq ? seq.events.map(stepTag) : [], 'event', false);
  } else if (kind === 'Input' && done.length === 0) {
    items = make(inputFields(ctx.spec.input), 'input field', true);
  } else if (kind === 'State' && done.length === 0) {
    items = make(stateKeys(ctx.spec), 'state key', true);
  } else if ((kind === 'Variable' || kind === 'Constant') && done.length === 0) {
    items = make([...(ctx.components ?? [])], 'component', false);
  } else if (kind === 'Run' && done.length === 0) {
    items = make(['id', 'status', 'completed_steps', 'current_step', 'environment', 'workflow'], 'run', true);
  }
  return { from: dollar, to: caret, items: filterPrefix(items, partial) };
}
