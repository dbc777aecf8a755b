import { describe, expect, it } from 'vitest';

import {
  auditChanges,
  auditQuery,
  between,
  moveItem,
  nextEnv,
  parseAuditPage,
  parseComponentConfig,
  parseEnv,
  parseJsonObject,
  parseMatrix,
  parseMembers,
  parsePreview,
  promotionTargets,
  secretsPatch,
  secretState,
  short,
} from '../lib';

const kept = { retention: {}, retentionEffective: {} };
const envs = [
  { slug: 'dev', name: 'dev', order: 0, isProduction: false, ...kept },
  { slug: 'staging', name: 'staging', order: 1, isProduction: false, ...kept },
  { slug: 'prd', name: 'prd', order: 2, isProduction: true, ...kept },
];

describe('moveItem', () => {
  it('moves an item up and down, clamped at the ends', () => {
    expect(moveItem(['a', 'b', 'c'], 2, -1)).toEqual(['a', 'c', 'b']);
    expect(moveItem(['a', 'b', 'c'], 0, 1)).toEqual(['b', 'a', 'c']);
    expect(moveItem(['a', 'b', 'c'], 0, -1)).toEqual(['a', 'b', 'c']);
    expect(moveItem(['a', 'b', 'c'], 5, -1)).toEqual(['a', 'b', 'c']);
  });
  it('does not change its input', () => {
    const input = ['a', 'b'];
    moveItem(input, 0, 1);
    expect(input).toEqual(['a', 'b']);
  });
});

describe('promotion path', () => {
  it('goes to the next environment in order', () => {
    expect(nextEnv(envs, 'dev')?.slug).toBe('staging');
    expect(nextEnv(envs, 'prd')).toBeNull();
    expect(nextEnv(envs, 'nope')).toBeNull();
  });
  it('offers every later environment and knows which lie between', () => {
    expect(promotionTargets(envs, 'dev').map((e) => e.slug)).toEqual(['staging', 'prd']);
    expect(between(envs, 'dev', 'prd').map((e) => e.slug)).toEqual(['staging']);
    expect(between(envs, 'prd', 'dev')).toEqual([]);
  });
});

describe('parseMatrix', () => {
  it('reads cells and ignores rows without a tag', () => {
    const m = parseMatrix({
      environments: [{ slug: 'dev', name: 'Dev', order: 0, is_production: false }, { slug: 'prd', is_production: true }],
      workflows: [
        { tag: 'wf', name: 'Wf', source: 'code', latest_version: 3, cells: { dev: { active: true, live_version: 2, pinned: true, managed_by: 'code' } } },
        { name: 'no tag' },
      ],
    });
    expect(m.environments.map((e) => [e.slug, e.isProduction])).toEqual([
      ['dev', false],
      ['prd', true],
    ]);
    expect(m.workflows).toHaveLength(1);
    expect(m.workflows[0]!.cells.dev).toEqual({ active: true, liveVersion: 2, pinned: true, managedBy: 'code' });
  });
  it('survives a body of the wrong shape', () => {
    expect(parseMatrix('nope')).toEqual({ environments: [], workflows: [] });
  });
});

describe('parsePreview', () => {
  it('reads spec changes, config differences and secrets by name only', () => {
    const p = parsePreview({
      workflow: 'wf',
      version: 2,
      from_env: 'dev',
      to_env: 'prd',
      components_used: ['accounts'],
      environments: [
        {
          env: 'prd',
          is_production: true,
          before: { active: false, version: 1, pinned: false, managed_by: '' },
          after: { active: true, version: 2, pinned: true, managed_by: 'user' },
          spec_diff: { from_version: 1, to_version: 2, changes: [{ path: 'a.b', change: 'changed', before: 1, after: 2 }] },
          config_diff: [
            {
              component: 'accounts',
              kind: 'app',
              configured_in_a: true,
              configured_in_b: true,
              config: [{ path: 'base_url', change: 'changed', before: 'http://dev', after: 'https://prd' }],
              variables: [],
              constants: [],
              secrets: [{ name: 'api_key', in_a: true, in_b: false, differs: true }],
            },
          ],
          unconfigured: ['mailer'],
        },
      ],
      cells: { prd: { active: true, live_version: 2, pinned: true, managed_by: 'user' } },
    });
    const t = p.environments[0]!;
    expect(t.before).toEqual({ active: false, liveVersion: 1, pinned: false, managedBy: '' });
    expect(t.after.liveVersion).toBe(2);
    expect(t.specDiff.changes[0]).toEqual({ path: 'a.b', change: 'changed', before: 1, after: 2 });
    expect(t.configDiff[0]!.secrets[0]).toEqual({ name: 'api_key', inA: true, inB: false, differs: true, unreadable: false });
    expect(t.unconfigured).toEqual(['mailer']);
    expect(p.cells?.prd?.liveVersion).toBe(2);
  });
  it('describes a secret difference without a value', () => {
    const s = { name: 'k', inA: true, inB: true, differs: true, unreadable: false };
    expect(secretState(s, 'dev', 'prd')).toBe('set in both, values differ');
    expect(secretState({ ...s, inB: false }, 'dev', 'prd')).toBe('only in dev');
  });
});

describe('component configuration', () => {
  it('keeps only the names of secrets', () => {
    const c = parseComponentConfig({ component: 'x', environment: 'dev', config: { a: 1 }, secrets: { b: '•••', a: '•••' }, updated_at: null });
    expect(c.secretNames).toEqual(['a', 'b']);
    expect(c.config).toEqual({ a: 1 });
    expect(c.variables).toEqual({});
  });
  it('sends only the secrets that change', () => {
    expect(
      secretsPatch([
        { name: 'kept', value: '', remove: false },
        { name: 'new', value: 's3cret', remove: false },
        { name: 'gone', value: 'ignored', remove: true },
        { name: '  ', value: 'x', remove: false },
      ]),
    ).toEqual({ new: 's3cret', gone: null });
  });
  it('parses JSON objects and names the problem otherwise', () => {
    expect(parseJsonObject('')).toEqual({ ok: true, value: {} });
    expect(parseJsonObject('{"a": 1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseJsonObject('[1]').ok).toBe(false);
    expect(parseJsonObject('{a').ok).toBe(false);
  });
});

describe('members', () => {
  it('reads members and falls back to viewer for an unknown role', () => {
    expect(parseMembers([{ username: 'a', role: 'admin', created_at: 'x' }, { username: 'b', role: 'king' }, { role: 'admin' }])).toEqual([
      { username: 'a', role: 'admin', since: 'x' },
      { username: 'b', role: 'viewer', since: '' },
    ]);
  });
});

describe('audit', () => {
  it('builds the query from the filled-in filters', () => {
    expect(auditQuery({ actor: ' alice ', action: '', since: '2026-01-01', until: '' }, 50)).toBe('actor=alice&since=2026-01-01&limit=50&offset=50');
    expect(auditQuery({ actor: '', action: 'workflow.promote', since: '', until: '' })).toBe('action=workflow.promote&limit=50');
  });
  it('reads a page', () => {
    const page = parseAuditPage({ count: 7, results: [{ id: 1, at: 't', actor: null, action: 'a', target: 'x', before: null, after: { v: 1 } }, { id: 'bad' }] });
    expect(page.count).toBe(7);
    expect(page.entries).toEqual([{ id: 1, at: 't', actor: null, action: 'a', target: 'x', before: null, after: { v: 1 } }]);
  });
  it('lists what changed, key by key', () => {
    expect(auditChanges({ active: false, version: 1 }, { active: true, version: 1 })).toEqual([{ key: 'active', before: false, after: true }]);
    expect(auditChanges(null, { role: 'viewer' })).toEqual([{ key: 'role', before: null, after: 'viewer' }]);
    expect(auditChanges(null, null)).toEqual([]);
  });
  it('shortens long values', () => {
    expect(short(null)).toBe('—');
    expect(short('x'.repeat(100), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(short({ a: 1 })).toBe('{"a":1}');
  });
});

describe('parseEnv', () => {
  it('reads the retention an environment sets and the one that applies', () => {
    const env = parseEnv({
      slug: 'dev',
      name: 'Dev',
      order: 0,
      is_production: false,
      retention: { completed_days: 7, bogus: 3, failed_days: 'x' },
      retention_effective: { completed_days: 7, failed_days: 90, keep_last: 20, audit_days: 365 },
    });
    expect(env?.retention).toEqual({ completed_days: 7 });
    expect(env?.retentionEffective).toEqual({ completed_days: 7, failed_days: 90, keep_last: 20, audit_days: 365 });
  });

  it('gives an empty retention when the server sends none', () => {
    expect(parseEnv({ slug: 'dev' })?.retention).toEqual({});
  });
});
