// The product's section tabs (workflows, activation, environments, members, audit) and
// what every admin page shares: its client, product and role.
import { useMemo, type ReactNode } from 'react';

import { useApi, useBootstrap } from '../appContext';
import { roleAtLeast } from '../bootstrap';
import { TopBar } from '../components/Shell';
import { AdminClient } from './client';
import './admin.css';

export type Section = 'workflows' | 'runs' | 'activation' | 'environments' | 'members' | 'audit';

export function useAdmin(): { client: AdminClient; product: { slug: string; name: string; role: string }; isAdmin: boolean } {
  const api = useApi();
  const boot = useBootstrap();
  const product = boot.product ?? { slug: '', name: '', role: '' };
  const client = useMemo(() => new AdminClient(api, product.slug), [api, product.slug]);
  return { client, product, isAdmin: roleAtLeast(product.role, 'admin') };
}

export function sectionHref(product: string, section: Section): string {
  const base = `/p/${encodeURIComponent(product)}/`;
  return section === 'workflows' ? base : `${base}${section}/`;
}

const LABELS: Record<Section, string> = {
  workflows: 'Workflows',
  runs: 'Runs',
  activation: 'Activation',
  environments: 'Environments',
  members: 'Members',
  audit: 'Audit log',
};

export function AdminNav({ current, product, role }: { current: Section; product: string; role: string }) {
  const sections: Section[] = ['workflows', 'runs', 'activation', 'environments', 'members'];
  if (roleAtLeast(role, 'admin')) sections.push('audit');
  return (
    <nav className="admin-nav" aria-label="Product sections" data-testid="admin-nav">
      {sections.map((s) => (
        <a key={s} href={sectionHref(product, s)} className={s === current ? 'on' : ''} aria-current={s === current ? 'page' : undefined} data-testid={`nav-${s}`}>
          {LABELS[s]}
        </a>
      ))}
    </nav>
  );
}

export function AdminFrame({ section, title, subtitle, actions, children }: { section: Section; title: string; subtitle?: ReactNode; actions?: ReactNode; children: ReactNode }) {
  const { product } = useAdmin();
  return (
    <div className="page">
      <TopBar crumbs={[{ label: 'Products', href: '/' }, { label: product.name, href: sectionHref(product.slug, 'workflows') }, { label: LABELS[section] }]} />
      <main className="content">
        <AdminNav current={section} product={product.slug} role={product.role} />
        <div className="content-head row">
          <div>
            <h1>{title}</h1>
            {subtitle ? <p className="muted">{subtitle}</p> : null}
          </div>
          {actions}
        </div>
        {children}
      </main>
    </div>
  );
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
