// What the palette offers: the built-in event types and the product's component events.

import { newLoop } from './loops';
import { COMPONENT_KINDS, EVENT_TYPES, type EventSpec, type EventType, type JsonObject, type LoopSpec } from './spec';

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
  GRAPH: { label: 'Graph', description: 'Graph database operation', event: 'create_node', input: { labels: [], properties: {} } },
  FEATURE: { label: 'Child workflow', description: 'Run another workflow', event: 'child-workflow' },
  JOB: { label: 'Job', description: 'Schedule a background job', event: 'job' },
  SLEEP: { label: 'Sleep', description: 'Pause for a duration', event: 'sleep', input: { duration: '5s' } },
  WAIT_SIGNAL: { label: 'Wait for signal', description: 'Park until a signal arrives', event: 'approve', input: { timeout: '24h' } },
  CHECKPOINT: { label: 'Checkpoint', description: 'Save progress for recovery', event: 'checkpoint' },
  SET_STATE: { label: 'Set state', description: 'Store a value in run state', event: 'set-state', input: { key: 'key', value: '' } },
  ROLLBACK: { label: 'Rollback', description: 'Compensate what completed; the run goes on', event: 'rollback', input: { reason: '' } },
  CODE: { label: 'Python code', description: 'Call package.module:function', event: 'package.module:function' },
  FOREACH: { label: 'For each', description: 'Run steps once per item of a list', event: 'for-each' },
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
    template: () => ({
      type,
      event: info.event ?? type.toLowerCase(),
      input: { ...(info.input ?? {}) },
      ...(type === 'FOREACH' ? { loop: newLoop() as unknown as LoopSpec } : {}),
    }),
  };
});

export function typeInfo(type: EventType): EventTypeInfo {
  return EVENT_TYPE_INFO.find((i) => i.type === type)!;
}

export interface ComponentInfo {
  tag: string;
  kind: string;
  name: string;
  /** `input`: what a dropped step of this event starts with (default `{}`). */
  events: { tag: string; description: string; input?: JsonObject }[];
}

/** A graph component's built-in operations (runtime/cypher.py BUILTIN_OPERATIONS): offered
 * for every graph component, never declared; its `schema` entry declares tables, it is not
 * an event. */
const GRAPH_OPERATIONS: { tag: string; description: string; input: JsonObject }[] = [
  { tag: 'create_node', description: 'Create a node (one label, properties)', input: { labels: [], properties: {} } },
  { tag: 'update_node', description: "Set a node's properties by id", input: { id: '', properties: {} } },
  { tag: 'delete_node', description: 'Delete a node and its relationships', input: { id: '' } },
  { tag: 'create_relationship', description: 'Join two nodes by id', input: { from: '', to: '', type: '', properties: {} } },
  { tag: 'delete_relationship', description: 'Delete a relationship by id', input: { id: '' } },
];

function graphEvents(declared: ComponentInfo['events'], raw: Record<string, unknown>): ComponentInfo['events'] {
  const schema = raw.schema && typeof raw.schema === 'object' ? (raw.schema as { nodes?: unknown }) : {};
  const labels = schema.nodes && typeof schema.nodes === 'object' ? Object.keys(schema.nodes) : [];
  const builtIn = GRAPH_OPERATIONS.map((op) =>
    op.tag === 'create_node' ? { ...op, input: { labels: labels.slice(0, 1), properties: {} } } : op,
  );
  const actions = declared
    .filter((e) => e.tag !== 'schema' && !GRAPH_OPERATIONS.some((op) => op.tag === e.tag))
    .map((e) => ({ ...e, input: { params: {} } }));
  return [...builtIn, ...actions];
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
    const raw = c.events && typeof c.events === 'object' && !Array.isArray(c.events) ? (c.events as Record<string, unknown>) : {};
    out.push({
      tag: c.tag,
      kind: c.kind,
      name: typeof c.name === 'string' && c.name ? c.name : c.tag,
      events: c.kind === 'graph' ? graphEvents(events, raw) : events,
    });
  }
  return out;
}

/** The event a component's palette item drops. */
export function componentEvent(component: ComponentInfo, event: string): EventSpec {
  const type = typesForKind(component.kind)[0] ?? 'ACTION';
  const input = component.events.find((e) => e.tag === event)?.input ?? {};
  return { type, event, app: component.tag, input: structuredClone(input) };
}
