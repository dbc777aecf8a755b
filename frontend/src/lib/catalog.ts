// What the palette offers: the built-in event types and the product's component events.

import { COMPONENT_KINDS, EVENT_TYPES, type EventSpec, type EventType, type JsonObject } from './spec';

export interface EventTypeInfo {
  type: EventType;
  label: string;
  description: string;
  group: 'components' | 'flow';
  /** The event a freshly dropped step of this type starts with. */
  template: () => EventSpec;
}

const INFO: Record<EventType, { label: string; description: string; input?: JsonObject; event?: string }> = {
  ACTION: { label: 'API action', description: "Call an app's action", event: 'action' },
  DB_ACTION: { label: 'Database', description: 'Query or write a database', event: 'query' },
  NOTIFICATION: { label: 'Notification', description: 'Email, SMS or push', event: 'notify' },
  STORAGE: { label: 'Storage', description: 'Upload, download, delete files', event: 'upload' },
  PUBLISH: { label: 'Publish', description: 'Produce a broker message', event: 'publish' },
  QUOTA: { label: 'Quota', description: 'Rate limit check', event: 'quota' },
  FALLBACK: { label: 'Fallback', description: 'Try providers in turn', event: 'fallback' },
  GRAPH: { label: 'Graph', description: 'Graph database operation', event: 'graph' },
  FEATURE: { label: 'Child workflow', description: 'Run another workflow', event: 'child-workflow' },
  JOB: { label: 'Job', description: 'Schedule a background job', event: 'job' },
  SLEEP: { label: 'Sleep', description: 'Pause for a duration', event: 'sleep', input: { duration: '5s' } },
  WAIT_SIGNAL: { label: 'Wait for signal', description: 'Park until a signal arrives', event: 'approve', input: { timeout: '24h' } },
  CHECKPOINT: { label: 'Checkpoint', description: 'Save progress for recovery', event: 'checkpoint' },
  SET_STATE: { label: 'Set state', description: 'Store a value in run state', event: 'set-state', input: { key: 'key', value: '' } },
  ROLLBACK: { label: 'Rollback', description: 'Compensate what completed; the run goes on', event: 'rollback', input: { reason: '' } },
  CODE: { label: 'Python code', description: 'Call package.module:function', event: 'package.module:function' },
  RETURN: { label: 'Return', description: 'End the run with an output', event: 'return', input: { output: {} } },
  FAIL: { label: 'Fail (raise)', description: 'Fail the run with a message', event: 'raise', input: { message: '' } },
};

export const EVENT_TYPE_INFO: EventTypeInfo[] = EVENT_TYPES.map((type) => {
  const info = INFO[type];
  return {
    type,
    label: info.label,
    description: info.description,
    group: COMPONENT_KINDS[type] ? 'components' : 'flow',
    template: () => ({ type, event: info.event ?? type.toLowerCase(), input: { ...(info.input ?? {}) } }),
  };
});

export function typeInfo(type: EventType): EventTypeInfo {
  return EVENT_TYPE_INFO.find((i) => i.type === type)!;
}

export interface ComponentInfo {
  tag: string;
  kind: string;
  name: string;
  events: { tag: string; description: string }[];
}

/** Event types that can use a component of `kind` (the reverse of COMPONENT_KINDS). */
export function typesForKind(kind: string): EventType[] {
  return EVENT_TYPES.filter((t) => COMPONENT_KINDS[t] === kind);
}

/** Parse the components endpoint's items (list or paginated) into what the palette needs. */
export function parseComponents(raw: unknown): ComponentInfo[] {
  const list = Array.isArray(raw)
    ? raw
    : raw && typeof raw === 'object' && Array.isArray((raw as { results?: unknown }).results)
      ? (raw as { results: unknown[] }).results
      : [];
  const out: ComponentInfo[] = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const c = item as Record<string, unknown>;
    if (typeof c.tag !== 'string' || typeof c.kind !== 'string') continue;
    const events: ComponentInfo['events'] = [];
    if (c.events && typeof c.events === 'object' && !Array.isArray(c.events)) {
      for (const [tag, value] of Object.entries(c.events as Record<string, unknown>)) {
        const description =
          value && typeof value === 'object' && typeof (value as { description?: unknown }).description === 'string'
            ? (value as { description: string }).description
            : '';
        events.push({ tag, description });
      }
    } else if (Array.isArray(c.events)) {
      for (const value of c.events) {
        if (typeof value === 'string') events.push({ tag: value, description: '' });
        else if (value && typeof value === 'object' && typeof (value as { tag?: unknown }).tag === 'string') {
          events.push({ tag: (value as { tag: string }).tag, description: '' });
        }
      }
    }
    out.push({ tag: c.tag, kind: c.kind, name: typeof c.name === 'string' && c.name ? c.name : c.tag, events });
  }
  return out;
}

/** The event a component's palette item drops. */
export function componentEvent(component: ComponentInfo, event: string): EventSpec {
  const type = typesForKind(component.kind)[0] ?? 'ACTION';
  return { type, event, app: component.tag, input: {} };
}
