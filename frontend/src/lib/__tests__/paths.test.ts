import { describe, expect, it } from 'vitest';

import { eventFieldIssues, indexIssues, issueTarget, parsePath } from '../paths';
import { ev, seq, spec } from './fixtures';

const s = spec([seq('a', [], [ev('x')]), seq('b', ['a'], [ev('y'), ev('z')]), seq('c', ['b'], [ev('w')])]);

describe('parsePath', () => {
  it('reads bracket and dotted indexes alike', () => {
    expect(parsePath('sequences[2].events[0].input.body.id')).toEqual(['sequences', 2, 'events', 0, 'input', 'body', 'id']);
    expect(parsePath('sequences.2.events.0.type')).toEqual(['sequences', 2, 'events', 0, 'type']);
  });
});

describe('issueTarget', () => {
  it('maps an event path to its node, event and field', () => {
    expect(issueTarget(s, { path: 'sequences[2].events[0].input.body.id', message: 'm' })).toEqual({
      kind: 'event',
      seqIndex: 2,
      seqTag: 'c',
      eventIndex: 0,
      field: 'input',
      subpath: 'body.id',
    });
  });

  it('maps sequence-level and workflow-level paths', () => {
    expect(issueTarget(s, { path: 'sequences[1].parents[0]', message: 'm' })).toMatchObject({ kind: 'sequence', seqTag: 'b', field: 'parents' });
    expect(issueTarget(s, { path: 'options.timeout', message: 'm' })).toEqual({ kind: 'workflow', section: 'options', subpath: 'timeout' });
    // An index past the end (a stale error) falls back to the workflow.
    expect(issueTarget(s, { path: 'sequences[9].tag', message: 'm' }).kind).toBe('workflow');
  });
});

describe('indexIssues', () => {
  it('groups issues by sequence and event and counts them', () => {
    const index = indexIssues(s, [
      { path: 'sequences[1].events[1].condition', message: 'bad condition' },
      { path: 'sequences[1].events[1].input.id', message: 'unknown step' },
      { path: 'sequences[1].skip_if', message: 'bad skip_if' },
      { path: 'output.total', message: 'unknown step' },
    ]);
    const b = index.bySequence.get('b')!;
    expect(b.count).toBe(3);
    expect(b.own.map((i) => i.message)).toEqual(['bad skip_if']);
    expect(b.events.get(1)!.map((i) => i.message)).toEqual(['bad condition', 'unknown step']);
    expect(index.workflow.get('output')!.length).toBe(1);
    expect(index.total).toBe(4);
  });

  it('finds the issues of one inspector field', () => {
    const issues = [
      { path: 'sequences[1].events[1].condition', message: 'bad condition' },
      { path: 'sequences[1].events[1].input.id', message: 'unknown step' },
    ];
    expect(eventFieldIssues(s, issues, 1, 1, 'input').map((i) => i.message)).toEqual(['unknown step']);
    expect(eventFieldIssues(s, issues, 1, 0, 'input')).toEqual([]);
  });
});
