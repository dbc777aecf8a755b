import { useEffect, useState } from 'react';

import type { Product } from '../api';
import { useApi } from '../appContext';
import { Empty, TopBar } from '../components/Shell';

export function ProductsPage() {
  const api = useApi();
  const [products, setProducts] = useState<Product[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    api.products().then(setProducts, (e: Error) => setError(e.message));
  }, [api]);
  return (
    <div className="page">
      <TopBar crumbs={[{ label: 'Products' }]} />
      <main className="content">
        <div className="content-head">
          <h1>Products</h1>
          <p className="muted">Each product has its own components, environments and workflows.</p>
        </div>
        {error ? <div className="alert">{error}</div> : null}
        {products === null && !error ? <div className="muted">Loading…</div> : null}
        {products?.length === 0 ? (
          <Empty title="No products yet">
            <p>Ask an admin to add you to a product.</p>
          </Empty>
        ) : null}
        <div className="card-grid">
          {products?.map((p) => (
            <a key={p.slug} className="product-card" href={`/p/${encodeURIComponent(p.slug)}/`} data-testid={`product-${p.slug}`}>
              <span className="product-mark">{p.name.slice(0, 2).toUpperCase()}</span>
              <span className="product-body">
                <strong>{p.name}</strong>
                <span className="muted">{p.description || p.slug}</span>
              </span>
              {p.role ? <span className="role-chip">{p.role}</span> : null}
            </a>
          ))}
        </div>
      </main>
    </div>
  );
}
