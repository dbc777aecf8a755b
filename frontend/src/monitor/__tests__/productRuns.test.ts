import { describe, expect, it } from 'vitest';

import {
  EMPTY_FILTERS,
  ProductRunsApi,
  chunks,
  filterParams,
  filtersFromSearch,
  filtersToSearch,
  parseBulkPreview,
  parseRunsPage,
  parseStats,
  type BulkProgress,
} from '../productRuns';
import type { Api } from '../../api';

describe('filters', () => {
  it('turns the page filters into API parameters, leaving empty ones out', () => {
    const now = Date.parse('2026-12-05T12:00:00Z');
    const params = filterParams({ ...EMPTY_FILTERS, workflow: 'orders', failedStep: 'pay', since: '1h', where: ' input.a = 1 ', run: '#12' }, now);
    expect(params).toEqual({
      workflow: 'orders',
      failed_step: 'pay',
      created_after: '2026-12-05T11:00:00.000Z',
      where: 'input.a = 1',
      run: '12',
    });
    expect(filterParams(EMPTY_FILTERS)).toEqual({});
  });

  it('round-trips through the URL', () => {
    const f = { ...EMPTY_FILTERS, env: 'prd', status: 'failed', where: 'input.customer.id = 42' };
    expect(filtersFromSearch(filtersToSearch(f))).toEqual(f);
    expect(filtersToSearch(EMPTY_FILTERS)).toBe('');
  });
});

describe('answers', () => {
  it('checks a runs page and its grid', () => {
    const page = parseRunsPage({
      results: [{ id: 3, workflow: 'orders', environment: 'dev', version: 2, status: 'failed', failed_step: 'pay', duration_ms: 120 }, { id: 'x' }],
      next: '3',
      grid: { rows: [{ key: 'orders:pay', workflow: 'orders', tag: 'pay' }, 'junk'], cells: { '3': { 'orders:pay': 'failed' }, '4': 7 } },
    });
    expect(page.runs.map((r) => [r.id, r.failedStep, r.durationMs])).toEqual([[3, 'pay', 120]]);
    expect(page.next).toBe('3');
    expect(page.rows).toEqual([{ key: 'orders:pay', workflow: 'orders', tag: 'pay' }]);
    expect(page.cells).toEqual({ '3': { 'orders:pay': 'failed' } });
    expect(parseRunsPage(null)).toEqual({ runs: [], next: null, rows: [], cells: {} });
  });

  it('checks the stats', () => {
    const stats = parseStats({
      interval_s: 3600,
      buckets: [{ start: '2026-12-05T10:00:00Z', started: 4, completed: 3, failed: 1, p50_ms: 100, p95_ms: null }, { start: 'bad' }],
      groups: [{ workflow: 'orders', environment: 'dev', started: 4, failed: 1 }],
    });
    expect(stats.buckets).toEqual([{ start: Date.parse('2026-12-05T10:00:00Z') / 1000, started: 4, completed: 3, failed: 1, p50: 100, p95: null }]);
    expect(stats.groups[0]).toMatchObject({ workflow: 'orders', environment: 'dev', started: 4, completed: 0, failed: 1 });
  });

  it('checks a bulk preview', () => {
    const p = parseBulkPreview({ count: 2, runs: [5, 4, 'x'], refused: [{ run: 9, reason: 'prd' }], versions: { 'orders@dev': 2 }, rerun: { pay: 2 }, confirm_required: true, confirm_text: 'retry 2 runs', cap: 100 });
    expect(p).toEqual({ count: 2, runs: [5, 4], refused: [{ run: 9, reason: 'prd' }], versions: { 'orders@dev': 2 }, rerun: { pay: 2 }, confirmRequired: true, confirmText: 'retry 2 runs', cap: 100 });
  });
});

describe('bulk', () => {
  it('splits a selection into chunks', () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 3)).toEqual([]);
  });

  it('sends the previewed runs chunk by chunk, each with its own key, and reports progress', async () => {
    const sent: Record<string, unknown>[] = [];
    const api = {
      request: async (_m: string, _p: string, body: Record<string, unknown>) => {
        sent.push(body);
        const runs = body.runs as number[];
        return { done: runs.length - 1, failed: 1, results: [{ run: runs[0], ok: false, message: 'no' }] };
      },
    } as unknown as Api;
    const client = new ProductRunsApi(api, 'acme');
    const seen: BulkProgress[] = [];
    const preview = parseBulkPreview({ count: 12, runs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], confirm_required: true, confirm_text: 'retry 12 runs' });
    const done = await client.apply('retry', preview, { step: '', reason: 'fix', confirm: 'retry 12 runs', key: 'k', chunk: 5 }, (p) => seen.push(p));
    expect(sent.map((b) => [b.idempotency_key, (b.runs as number[]).length, b.confirm])).toEqual([
      ['k-0', 5, 'retry 5 runs'],
      ['k-1', 5, 'retry 5 runs'],
      ['k-2', 2, 'retry 2 runs'],
    ]);
    expect(sent[0]).toMatchObject({ product: 'acme', action: 'retry', reason: 'fix' });
    expect(seen.map((p) => p.sent)).toEqual([5, 10, 12]);
    expect(done).toMatchObject({ sent: 12, total: 12, done: 9, failed: 3 });
    expect(done.messages).toEqual(['#1: no', '#6: no', '#11: no']);
  });
});
