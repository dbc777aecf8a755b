// Stroke icons (24×24) for event types and toolbar actions: no icon library needed.
import { memo } from 'react';

import type { EventType } from '../lib/spec';

const TYPE_PATHS: Record<EventType, string> = {
  ACTION: 'M13 2 3 14h9l-1 8 10-12h-9l1-8z',
  DB_ACTION:
    'M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3zm0 0v12c0 1.7 3.6 3 8 3s8-1.3 8-3V6M4 12c0 1.7 3.6 3 8 3s8-1.3 8-3',
  NOTIFICATION: 'M6 8a6 6 0 1 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.94 1.94 0 0 0 3.4 0',
  STORAGE: 'M21 8v13H3V8M1 3h22v5H1zM10 12h4',
  PUBLISH: 'M22 2 11 13M22 2l-7 20-4-9-9-4 20-7z',
  QUOTA: 'M12 14l4-4M3.3 19a10 10 0 1 1 17.4 0',
  FALLBACK: 'M16 3h5v5M4 20 21 3M21 16v5h-5M15 15l6 6M4 4l5 5',
  FEATURE: 'M12 2 2 7l10 5 10-5-10-5zM2 17l10 5 10-5M2 12l10 5 10-5',
  JOB: 'M3 4h18v18H3zM16 2v4M8 2v4M3 10h18',
  SLEEP: 'M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z',
  WAIT_SIGNAL:
    'M4.9 19.1a10 10 0 0 1 0-14.2M19.1 4.9a10 10 0 0 1 0 14.2M7.8 16.2a6 6 0 0 1 0-8.4M16.2 7.8a6 6 0 0 1 0 8.4M12 12h.01',
  CHECKPOINT: 'M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1zM4 22v-7',
  SET_STATE: 'M19 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h11l5 5v11a2 2 0 0 1-2 2zM17 21v-8H7v8M7 3v5h8',
  ROLLBACK: 'M3 7v6h6M21 17a9 9 0 0 0-9-9 9 9 0 0 0-6 2.3L3 13',
  CODE: 'M16 18l6-6-6-6M8 6l-6 6 6 6',
  GRAPH:
    'M18 8a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM6 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM18 22a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM8.6 13.5l6.8 4M15.4 6.5l-6.8 4',
  FOREACH: 'M17 2l4 4-4 4M3 11v-1a4 4 0 0 1 4-4h14M7 22l-4-4 4-4M21 13v1a4 4 0 0 1-4 4H3',
  RETURN: 'M9 10l-5 5 5 5M20 4v7a4 4 0 0 1-4 4H4',
  FAIL: 'M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zM15 9l-6 6M9 9l6 6',
};

const UI_PATHS = {
  undo: 'M3 7v6h6M21 17a9 9 0 0 0-9-9 9 9 0 0 0-6 2.3L3 13',
  redo: 'M21 7v6h-6M3 17a9 9 0 0 1 9-9 9 9 0 0 1 6 2.3l3 2.7',
  layout: 'M3 3h7v7H3zM14 3h7v4h-7zM14 10h7v11h-7zM3 13h7v8H3z',
  sparkle: 'M12 3l1.9 5.8L20 10l-6.1 1.2L12 17l-1.9-5.8L4 10l6.1-1.2z',
  fit: 'M3 9V3h6M21 9V3h-6M3 15v6h6M21 15v6h-6',
  trash: 'M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6',
  plus: 'M12 5v14M5 12h14',
  search: 'M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM21 21l-4.3-4.3',
  history: 'M3 3v5h5M3.05 13A9 9 0 1 0 6 5.3L3 8M12 7v5l4 2',
  check: 'M20 6 9 17l-5-5',
  alert: 'M12 9v4M12 17h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z',
  x: 'M18 6 6 18M6 6l12 12',
  lock: 'M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4',
  rotate: 'M21 2v6h-6M3 12a9 9 0 0 1 15-6.7L21 8M3 22v-6h6M21 12a9 9 0 0 1-15 6.7L3 16',
  diff: 'M6 3v12M18 9v12M6 21a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM18 9a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM6 15c0-5 12-1 12-6',
  grip: 'M9 5h.01M9 12h.01M9 19h.01M15 5h.01M15 12h.01M15 19h.01',
  chevron: 'M9 18l6-6-6-6',
  rows: 'M3 12h18M3 6h18M3 18h18',
  columns: 'M12 3v18M6 3v18M18 3v18',
  upload: 'M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M17 8l-5-5-5 5M12 3v12',
  play: 'M5 3l14 9-14 9V3z',
} as const;

export type UiIcon = keyof typeof UI_PATHS;

export const TYPE_COLORS: Record<EventType, string> = {
  ACTION: '#2563eb',
  DB_ACTION: '#0d9488',
  NOTIFICATION: '#d97706',
  STORAGE: '#7c3aed',
  PUBLISH: '#db2777',
  QUOTA: '#64748b',
  FALLBACK: '#ea580c',
  FEATURE: '#4f46e5',
  JOB: '#0891b2',
  SLEEP: '#6366f1',
  WAIT_SIGNAL: '#c026d3',
  CHECKPOINT: '#16a34a',
  SET_STATE: '#0284c7',
  ROLLBACK: '#dc2626',
  CODE: '#334155',
  GRAPH: '#059669',
  FOREACH: '#b45309',
  RETURN: '#15803d',
  FAIL: '#b91c1c',
};

function Svg({ d, size }: { d: string; size: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d={d} />
    </svg>
  );
}

export const TypeIcon = memo(function TypeIcon({ type, size = 14 }: { type: EventType; size?: number }) {
  return (
    <span className="type-icon" style={{ background: TYPE_COLORS[type] }} title={type}>
      <Svg d={TYPE_PATHS[type]} size={size} />
    </span>
  );
});

export function Icon({ name, size = 16 }: { name: UiIcon; size?: number }) {
  return <Svg d={UI_PATHS[name]} size={size} />;
}
