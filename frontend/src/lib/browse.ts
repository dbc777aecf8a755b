// Filtering the workflow list: free text, source (canvas/code) and activation.
export interface Browsable {
  tag: string;
  name: string;
  description: string;
  source: 'canvas' | 'code';
  activations: { env: string; active: boolean }[];
}

export interface BrowseFilter {
  query: string;
  source: 'all' | 'canvas' | 'code';
  /** 'all', 'active' (anywhere), 'inactive' (nowhere), or 'env:<slug>' (active there). */
  activation: string;
}

export function filterWorkflows<T extends Browsable>(list: readonly T[], f: BrowseFilter): T[] {
  const q = f.query.trim().toLowerCase();
  return list.filter((w) => {
    if (q && ![w.tag, w.name, w.description].some((t) => t.toLowerCase().includes(q))) return false;
    if (f.source !== 'all' && w.source !== f.source) return false;
    const activeEnvs = w.activations.filter((a) => a.active).map((a) => a.env);
    if (f.activation === 'active' && activeEnvs.length === 0) return false;
    if (f.activation === 'inactive' && activeEnvs.length > 0) return false;
    if (f.activation.startsWith('env:') && !activeEnvs.includes(f.activation.slice(4))) return false;
    return true;
  });
}

/** A tag from a display name: 'Order Fulfillment!' → 'order-fulfillment'. */
export function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100);
}
