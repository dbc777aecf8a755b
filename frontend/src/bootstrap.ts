// The page shell (templates/app.html) hands the app a JSON blob: who is asking, where we are,
// and how to reach the API. It is checked, not cast.

export type Page = 'products' | 'workflows' | 'canvas' | 'run' | 'runs' | 'product-runs' | 'environments' | 'activation' | 'members' | 'audit';

export interface Bootstrap {
  page: Page;
  user: { username: string; isSuperuser: boolean };
  product: { slug: string; name: string; role: string } | null;
  workflow: { tag: string } | null;
  run: { id: string } | null;
  csrfToken: string;
  apiBase: string;
  urls: { home: string; logout: string; admin: string };
}

const PAGES: readonly Page[] = ['products', 'workflows', 'canvas', 'run', 'runs', 'product-runs', 'environments', 'activation', 'members', 'audit'];

function str(value: unknown, fallback = ''): string {
  return typeof value === 'string' ? value : fallback;
}

function obj(value: unknown): Record<string, unknown> | null {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

export function parseBootstrap(raw: unknown): Bootstrap {
  const b = obj(raw) ?? {};
  const page = PAGES.includes(b.page as Page) ? (b.page as Page) : 'products';
  const user = obj(b.user) ?? {};
  const product = obj(b.product);
  const workflow = obj(b.workflow);
  const run = obj(b.run);
  const urls = obj(b.urls) ?? {};
  return {
    page,
    user: { username: str(user.username), isSuperuser: user.isSuperuser === true },
    product: product ? { slug: str(product.slug), name: str(product.name), role: str(product.role, 'viewer') } : null,
    workflow: workflow ? { tag: str(workflow.tag) } : null,
    run: run ? { id: String(run.id ?? '') } : null,
    csrfToken: str(b.csrfToken),
    apiBase: str(b.apiBase, '/api/v1').replace(/\/$/, ''),
    urls: { home: str(urls.home, '/'), logout: str(urls.logout, '/logout/'), admin: str(urls.admin, '/admin/') },
  };
}

export function readBootstrap(): Bootstrap {
  const el = document.getElementById('trellis-bootstrap');
  return parseBootstrap(el?.textContent ? JSON.parse(el.textContent) : {});
}

const RANK: Record<string, number> = { viewer: 1, operator: 2, designer: 3, admin: 4 };

export function roleAtLeast(role: string | undefined, needed: 'viewer' | 'operator' | 'designer' | 'admin'): boolean {
  return (RANK[role ?? ''] ?? 0) >= RANK[needed]!;
}
