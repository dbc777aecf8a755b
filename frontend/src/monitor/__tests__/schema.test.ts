import { describe, expect, it } from 'vitest';

import { applyRunEntry } from '../RunsPage';
import { formFields, formToJson, jsonToForm, normalizeSchema } from '../schema';
import type { RunSummary } from '../runsApi';

describe('input schemas', () => {
  it('reads the shorthand like the server does', () => {
    expect(normalizeSchema({ order_id: 'string', qty: 'integer?', tags: 'string[]' })).toEqual({
      type: 'object',
      properties: { order_id: { type: 'string' }, qty: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['order_id', 'tags'],
    });
    expect(normalizeSchema({ type: 'object', properties: {} })).toEqual({ type: 'object', properties: {} });
    expect(normalizeSchema({})).toEqual({});
  });

  it('turns form values into typed JSON and names bad fields', () => {
    const fields = formFields({ order_id: 'string', qty: 'integer', rush: 'boolean?', meta: 'object?' });
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ['order_id', 'string', true],
      ['qty', 'integer', true],
      ['rush', 'boolean', false],
      ['meta', 'json', false],
    ]);
    expect(formToJson(fields, { order_id: 'A1', qty: '3', rush: true, meta: '{"a":1}' })).toEqual({
      value: { order_id: 'A1', qty: 3, rush: true, meta: { a: 1 } },
      errors: {},
    });
    expect(formToJson(fields, { qty: '1.5', meta: '{' }).errors).toEqual({ order_id: 'required', qty: 'must be an integer', meta: 'must be JSON' });
    expect(jsonToForm(fields, { order_id: 'A1', qty: 3, meta: { a: 1 } })).toEqual({ order_id: 'A1', qty: '3', meta: '{"a":1}' });
  });
});

describe('the live runs list', () => {
  const base: RunSummary = { id: 5, status: 'running', environment: 'dev', version: 1, input: {}, createdAt: '', startedAt: 'x', finishedAt: '', lastSeq: 3, origin: null, originKind: '' };

  it('updates a run and adds a new one on top', () => {
    let list = applyRunEntry([base], { type: 'entry', run: 5, seq: 9, kind: 'run_completed', step: '', data: {}, at: 't' }, 'dev');
    expect(list[0]).toMatchObject({ id: 5, status: 'completed', finishedAt: 't', lastSeq: 9 });
    list = applyRunEntry(list, { type: 'entry', run: 6, seq: 1, kind: 'run_started', step: '', data: { input: { a: 1 }, version: 2 }, at: 't' }, 'dev');
    expect(list.map((r) => [r.id, r.status])).toEqual([[6, 'running'], [5, 'completed']]);
    expect(list[0]!.input).toEqual({ a: 1 });
    expect(applyRunEntry(list, { type: 'entry', run: 5, seq: 4, kind: 'log', step: '', data: {}, at: '' }, 'dev')).toBe(list);
  });
});
