// Error paths from the validate endpoint ('sequences[2].events[0].input.body.id') mapped to
// what the canvas draws: a sequence node, an event row, an inspector field.

import type { WorkflowSpec } from './spec';

export interface Issue {
  path: string;
  message: string;
}

export type Token = string | number;

/** 'sequences[2].events[0].input.body.id' (or pydantic's 'sequences.2.events.0') → tokens. */
export function parsePath(path: string): Token[] {
  const tokens: Token[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]|\[['"]([^'"\]]*)['"]\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(path)) !== null) {
    if (m[2] !== undefined) tokens.push(Number(m[2]));
    else if (m[3] !== undefined) tokens.push(m[3]);
    else if (m[1] !== undefined) tokens.push(/^\d+$/.test(m[1]) ? Number(m[1]) : m[1]);
  }
  return tokens;
}

export function formatPath(tokens: readonly Token[]): string {
  let out = '';
  for (const t of tokens) {
    if (typeof t === 'number') out += `[${t}]`;
    else out += out ? `.${t}` : t;
  }
  return out;
}

export type IssueTarget =
  | { kind: 'event'; seqIndex: number; seqTag: string; eventIndex: number; field: string; subpath: string }
  | { kind: 'sequence'; seqIndex: number; seqTag: string; field: string }
  | { kind: 'workflow'; section: string; subpath: string };

export function issueTarget(spec: WorkflowSpec, issue: Issue): IssueTarget {
  const t = parsePath(issue.path);
  if (t[0] === 'sequences' && typeof t[1] === 'number') {
    const seqIndex = t[1];
    const seq = spec.sequences[seqIndex];
    if (seq) {
      if (t[2] === 'events' && typeof t[3] === 'number' && t[3] < seq.events.length) {
        return {
          kind: 'event',
          seqIndex,
          seqTag: seq.tag,
          eventIndex: t[3],
          field: typeof t[4] === 'string' ? t[4] : '',
          subpath: formatPath(t.slice(5)),
        };
      }
      return { kind: 'sequence', seqIndex, seqTag: seq.tag, field: typeof t[2] === 'string' ? t[2] : '' };
    }
  }
  return { kind: 'workflow', section: typeof t[0] === 'string' ? t[0] : '', subpath: formatPath(t.slice(1)) };
}

export interface SequenceIssues {
  /** Issues on the sequence itself (tag, parents, level, skip_if…). */
  own: Issue[];
  /** Issues by event index. */
  events: Map<number, Issue[]>;
  count: number;
  /** Identity of the content, so unchanged issues keep memoized nodes still. */
  key: string;
}

export interface IssueIndex {
  bySequence: Map<string, SequenceIssues>;
  workflow: Map<string, Issue[]>;
  total: number;
}

export function indexIssues(spec: WorkflowSpec, issues: readonly Issue[]): IssueIndex {
  const bySequence = new Map<string, SequenceIssues>();
  const workflow = new Map<string, Issue[]>();
  for (const issue of issues) {
    const target = issueTarget(spec, issue);
    if (target.kind === 'workflow') {
      const list = workflow.get(target.section) ?? [];
      list.push(issue);
      workflow.set(target.section, list);
      continue;
    }
    let entry = bySequence.get(target.seqTag);
    if (!entry) {
      entry = { own: [], events: new Map(), count: 0, key: '' };
      bySequence.set(target.seqTag, entry);
    }
    entry.count += 1;
    if (target.kind === 'sequence') entry.own.push(issue);
    else {
      const list = entry.events.get(target.eventIndex) ?? [];
      list.push(issue);
      entry.events.set(target.eventIndex, list);
    }
  }
  for (const entry of bySequence.values()) {
    entry.key = JSON.stringify([entry.own, [...entry.events.entries()]]);
  }
  return { bySequence, workflow, total: issues.length };
}

/** Issues of one event whose path starts with `field` (and optionally `subpath`). */
export function eventFieldIssues(
  spec: WorkflowSpec,
  issues: readonly Issue[],
  seqIndex: number,
  eventIndex: number,
  field: string,
): Issue[] {
  return issues.filter((issue) => {
    const t = issueTarget(spec, issue);
    return t.kind === 'event' && t.seqIndex === seqIndex && t.eventIndex === eventIndex && t.field === field;
  });
}

/** Issues of one event that no specific inspector field shows (e.g. at the event's root). */
export function eventIssues(spec: WorkflowSpec, issues: readonly Issue[], seqIndex: number, eventIndex: number): Issue[] {
  return issues.filter((issue) => {
    const t = issueTarget(spec, issue);
    return t.kind === 'event' && t.seqIndex === seqIndex && t.eventIndex === eventIndex;
  });
}
