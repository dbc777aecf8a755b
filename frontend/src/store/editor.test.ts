import { describe, expect, it } from 'vitest';

import { ev, seq, spec } from '../lib/__tests__/fixtures';
import { createEditorStore } from './editor';

describe('editor store', () => {
  it('undoes and redoes every edit', () => {
    const store = createEditorStore({ spec: spec([]) });
    const s = store.getState;
    const a = s().addSequence({ events: [ev('x')] });
    const b = s().addSequence();
    s().connect(a, b);
    s().insertEvent(b, ev('y'));
    expect(s().spec.sequences.map((q) => [q.tag, q.parents, q.events.length])).toEqual([
      [a, [], 1],
      [b, [a], 1],
    ]);
    s().undo();
    expect(s().spec.sequences[1]!.events).toHaveLength(0);
    s().undo();
    expect(s().spec.sequences[1]!.parents).toEqual([]);
    s().redo();
    s().redo();
    expect(s().spec.sequences[1]!.events).toHaveLength(1);
    expect(s().edges.map((e) => e.id)).toEqual([`${a}->${b}`]);
    expect(s().canRedo()).toBe(false);
  });

  it('coalesces typing in one field into one undo step', () => {
    const store = createEditorStore({ spec: spec([seq('a', [], [ev('x')])]) });
    const s = store.getState;
    s().updateEvent({ seq: 'a', index: 0 }, { retries: 1 });
    s().updateEvent({ seq: 'a', index: 0 }, { retries: 2 });
    s().updateEvent({ seq: 'a', index: 0 }, { retries: 3 });
    expect(s().past).toHaveLength(1);
    s().undo();
    expect(s().spec.sequences[0]!.events[0]!.retries).toBeUndefined();
  });

  it('deletes the selection and forgets stale selections', () => {
    const store = createEditorStore({ spec: spec([seq('a', [], [ev('x'), ev('y')]), seq('b', ['a'])]) });
    const s = store.getState;
    s().selectEvent({ seq: 'a', index: 1 });
    s().deleteSelection();
    expect(s().spec.sequences[0]!.events).toHaveLength(1);
    expect(s().selectedEvent).toBeNull();
    s().selectSequences(['a']);
    s().deleteSelection();
    expect(s().spec.sequences.map((q) => [q.tag, q.parents])).toEqual([['b', []]]);
    expect(s().selected.size).toBe(0);
  });

  it('copies and pastes sequences and events', () => {
    const store = createEditorStore({ spec: spec([seq('a', [], [ev('x')]), seq('b', ['a'])]) });
    const s = store.getState;
    s().selectSequences(['a', 'b']);
    s().copy();
    s().paste();
    expect(s().spec.sequences.map((q) => [q.tag, q.parents])).toEqual([
      ['a', []],
      ['b', ['a']],
      ['a-2', []],
      ['b-2', ['a-2']],
    ]);
    expect([...s().selected]).toEqual(['a-2', 'b-2']);
    s().selectEvent({ seq: 'a', index: 0 });
    s().copy();
    s().selectEvent({ seq: 'b', index: 0 });
    s().selectSequences(['b']);
    s().paste();
    expect(s().spec.sequences[1]!.events.map((e) => e.tag)).toEqual(['x-3']);
  });

  it('moves nodes during a drag without touching the spec, then records the drop', () => {
    const store = createEditorStore({ spec: spec([seq('a'), seq('b', ['a'])]) });
    const s = store.getState;
    const before = s().spec;
    s().onNodesChange([{ type: 'position', id: 'a', position: { x: 10, y: 20 }, dragging: true }]);
    expect(s().spec).toBe(before);
    expect(s().nodes[0]!.position).toEqual({ x: 10, y: 20 });
    s().commitPositions([{ id: 'a', position: { x: 10.4, y: 20 } }]);
    expect(s().spec.layout.positions.a).toEqual({ x: 10, y: 20 });
    s().undo();
    expect(s().spec.layout.positions.a).toBeUndefined();
  });

  it('refuses edits when read-only', () => {
    const store = createEditorStore({ spec: spec([seq('a')]), readOnly: true });
    store.getState().addSequence();
    store.getState().deleteSelection();
    expect(store.getState().spec.sequences).toHaveLength(1);
    expect(store.getState().nodes[0]!.draggable).toBe(false);
  });
});
