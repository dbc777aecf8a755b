// The admin pages, by the page name the server's shell puts in the bootstrap.
import type { ReactElement } from 'react';

import { AuditPage } from './AuditPage';
import { EnvironmentsPage } from './EnvironmentsPage';
import { MatrixPage } from './MatrixPage';
import { MembersPage } from './MembersPage';

export const ADMIN_PAGES = ['environments', 'activation', 'members', 'audit'] as const;
export type AdminPageName = (typeof ADMIN_PAGES)[number];

export function adminPage(page: string): ReactElement | null {
  switch (page) {
    case 'environments':
      return <EnvironmentsPage />;
    case 'activation':
      return <MatrixPage />;
    case 'members':
      return <MembersPage />;
    case 'audit':
      return <AuditPage />;
    default:
      return null;
  }
}

export { AdminNav } from './AdminNav';
