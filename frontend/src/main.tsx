import '@xyflow/react/dist/style.css';
import './styles.css';

import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { adminPage } from './admin';
import { Api } from './api';
import { AppContext } from './appContext';
import { readBootstrap } from './bootstrap';
import { CanvasPage } from './pages/CanvasPage';
import { ProductsPage } from './pages/ProductsPage';
import { RunMonitorPage } from './pages/RunMonitorPage';
import { WorkflowsPage } from './pages/WorkflowsPage';
import { RunsPage } from './monitor/RunsPage';
import { ProductRunsPage } from './monitor/ProductRunsPage';

const boot = readBootstrap();
const api = new Api(boot.apiBase, boot.csrfToken);

function Page() {
  switch (boot.page) {
    case 'workflows':
      return <WorkflowsPage />;
    case 'canvas':
      return <CanvasPage />;
    case 'run':
      return <RunMonitorPage />;
    case 'runs':
      return <RunsPage />;
    case 'product-runs':
      return <ProductRunsPage />;
    default:
      return adminPage(boot.page) ?? <ProductsPage />;
  }
}

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <AppContext.Provider value={{ boot, api }}>
        <Page />
      </AppContext.Provider>
    </StrictMode>,
  );
}
