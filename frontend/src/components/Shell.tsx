// The frame around every page: brand, breadcrumbs, the user and a logout button.
import type { ReactNode } from 'react';

import { useBootstrap } from '../appContext';

export interface Crumb {
  label: string;
  href?: string;
}

export function TopBar({ crumbs, children }: { crumbs: Crumb[]; children?: ReactNode }) {
  const boot = useBootstrap();
  return (
    <header className="topbar">
      <a className="brand" href={boot.urls.home} title="Trellis">
        <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true">
          <rect x="2" y="3" width="7" height="6" rx="1.5" fill="#6366f1" />
          <rect x="15" y="3" width="7" height="6" rx="1.5" fill="#a5b4fc" />
          <rect x="8.5" y="15" width="7" height="6" rx="1.5" fill="#4f46e5" />
          <path d="M5.5 9v3h13V9M12 12v3" stroke="#94a3b8" strokeWidth="1.6" fill="none" />
        </svg>
        <span>Trellis</span>
      </a>
      <nav className="crumbs" aria-label="Breadcrumb">
        {crumbs.map((c, i) => (
          <span key={i} className="crumb">
            <span className="sep">/</span>
            {c.href ? <a href={c.href}>{c.label}</a> : <span className="current">{c.label}</span>}
          </span>
        ))}
      </nav>
      <div className="topbar-center">{children}</div>
      <div className="user">
        <span className="avatar" aria-hidden="true">
          {boot.user.username.slice(0, 1).toUpperCase()}
        </span>
        <span className="username" data-testid="username">{boot.user.username}</span>
        <form method="post" action={boot.urls.logout}>
          <input type="hidden" name="csrfmiddlewaretoken" value={boot.csrfToken} />
          <button type="submit" className="link small">
            Log out
          </button>
        </form>
      </div>
    </header>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children}
    </div>
  );
}
