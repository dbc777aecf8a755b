import { describe, expect, it } from 'vitest';

import * as edits from '../edits';
import { stepTag } from '../spec';
import { ev, seq, spec } from './fixtures';

describe('edits', () => {
  it('adds a sequence with a unique tag and unique step tags', () => {
    const s = spec([seq('sequence_2', [], [ev('x')])]);
    const { spec: next, tag } = edits.addSequence(s, { events: [ev('x')], position: { x: 5, y: 6 } });
    expect(tag).toBe('sequence_2-2');
    expect(next.sequences[1]!.events.map(stepTag)).toEqual(['x-2']);
    expect(next.layout.positions[tag]).toEqual({ x: 5, y: 6 });
  });

  it('inserts and reorders events, within and across sequences', () => {
    let s = spec([seq('a', [], [ev('x'), ev('y'), ev('z')]), seq('b', [], [ev('w')])]);
    s = edits.insertEvent(s, 'a', ev('n'), 1);
    expect(s.sequences[0]!.events.map(stepTag)).toEqual(['x', 'n', 'y', 'z']);
    // Drop indicator after 'z' (index 4) for 'x' (index 0): x moves to the end.
    s = edits.moveEvent(s, { seq: 'a', index: 0 }, 'a', 4);
    expect(s.sequences[0]!.events.map(stepTag)).toEqual(['n', 'y', 'z', 'x']);
    s = edits.moveEvent(s, { seq: 'a', index: 3 }, 'b', 0);
    expect(s.sequences.map((q) => q.events.map(stepTag))).toEqual([['n', 'y', 'z'], ['x', 'w']]);
  });

  it('keeps untouched sequences identical', () => {
    const s = spec([seq('a', [], [ev('x')]), seq('b', [], [ev('y')])]);
    const next = edits.updateEvent(s, 'b', 0, { retries: 3 });
    expect(next.sequences[0]).toBe(s.sequences[0]);
    expect(next.sequences[1]!.events[0]!.retries).toBe(3);
  });

  it('drops fields cleared to undefined', () => {
    const s = spec([seq('a', [], [{ ...ev('x'), condition: '$Input{a} == 1' }])]);
    const next = edits.updateEvent(s, 'a', 0, { condition: undefined });
    expect('condition' in next.sequences[0]!.events[0]!).toBe(false);
  });

  it('removes sequences with the parent links and positions naming them', () => {
    let s = spec([seq('a'), seq('b', ['a']), seq('c', ['a', 'b'])]);
    s = { ...s, layout: { ...s.layout, positions: { a: { x: 0, y: 0 }, c: { x: 1, y: 1 } } } };
    const next = edits.removeSequences(s, new Set(['a']));
    expect(next.sequences.map((q) => [q.tag, q.parents])).toEqual([
      ['b', []],
      ['c', ['b']],
    ]);
    expect(Object.keys(next.layout.positions)).toEqual(['c']);
  });

  it('connects without cycles and disconnects', () => {
    let s = spec([seq('a'), seq('b', ['a'])]);
    expect(edits.connect(s, 'b', 'a')).toBe(s);
    s = edits.disconnect(s, 'a', 'b');
    expect(s.sequences[1]!.parents).toEqual([]);
  });

  it('renames a sequence everywhere it is named', () => {
    let s = spec([seq('a'), seq('b', ['a'])]);
    s = { ...s, layout: { ...s.layout, positions: { a: { x: 3, y: 4 } } } };
    const next = edits.renameSequence(s, 'a', 'start');
    expect(next.sequences.map((q) => [q.tag, q.parents])).toEqual([
      ['start', []],
      ['b', ['start']],
    ]);
    expect(next.layout.positions.start).toEqual({ x: 3, y: 4 });
    expect(edits.renameSequence(next, 'start', 'b')).toBe(next);
  });

  it('follows a renamed sequence in its $Sequence references, and only there', () => {
    const s = spec([
      seq('a', [], [ev('x')]),
      seq('ab', ['a'], [{ ...ev('y', { v: '$Sequence{a}{x}{id}', w: '$Sequence{ab}{y}{id}' }), condition: '$Sequence{a}{x}{ok} == true' }]),
    ]);
    const next = edits.renameSequence(s, 'a', 'start');
    const y = next.sequences[1]!.events[0]!;
    expect(y.input).toEqual({ v: '$Sequence{start}{x}{id}', w: '$Sequence{ab}{y}{id}' });
    expect(y.condition).toBe('$Sequence{start}{x}{ok} == true');
  });

  it('renames a step and every reference to it, leaving the rest identical', () => {
    const s = {
      ...spec([
        seq('a', [], [ev('fetch'), ev('use', { id: '$Step{fetch}{id}', list: ['$Sequence{a}{fetch}{n}', '$Step{fetchAll}{n}'] })]),
        seq('b', ['a'], [{ ...ev('later'), condition: '$Step{fetch}{ok} && $Step{use}{ok}' }]),
        seq('c', [], [ev('other')]),
      ]),
      output: { id: '$Step{fetch}{id}' },
    };
    const next = edits.renameStep(s, 'a', 0, 'load');
    expect(next.sequences[0]!.events[0]!.tag).toBe('load');
    expect(next.sequences[0]!.events[1]!.input).toEqual({ id: '$Step{load}{id}', list: ['$Sequence{a}{load}{n}', '$Step{fetchAll}{n}'] });
    expect(next.sequences[1]!.events[0]!.condition).toBe('$Step{load}{ok} && $Step{use}{ok}');
    expect(next.output).toEqual({ id: '$Step{load}{id}' });
    expect(next.sequences[2]).toBe(s.sequences[2]);
    expect(next.layout).toBe(s.layout);
    expect(edits.renameStep(next, 'a', 0, 'load')).toBe(next);
  });

  it('pastes copies with fresh tags, keeping links inside the copy', () => {
    const s = spec([seq('a', [], [ev('x')]), seq('b', ['a'], [ev('y')])]);
    const { spec: next, tags } = edits.pasteSequences(s, s.sequences, { a: { x: 0, y: 0 } }, { x: 40, y: 40 });
    expect(tags).toEqual(['a-2', 'b-2']);
    expect(next.sequences[3]!.parents).toEqual(['a-2']);
    expect(next.sequences.flatMap((q) => q.events.map(stepTag))).toEqual(['x', 'y', 'x-2', 'y-2']);
    expect(next.layout.positions['a-2']).toEqual({ x: 40, y: 40 });
  });
});
