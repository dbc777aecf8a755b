import { describe, expect, it } from 'vitest';

import { componentEvent, parseComponents } from '../catalog';

const SOCIAL = {
  tag: 'social',
  kind: 'graph',
  name: 'Social graph',
  events: {
    schema: { nodes: { User: { name: 'STRING' } }, relationships: {} },
    'find-connections': { op: 'query', cypher: 'MATCH (u:User) RETURN u', description: 'Who follows whom' },
  },
};

describe('a graph component in the palette', () => {
  it('offers the five built-in operations and its declared Cypher operations, not its schema', () => {
    const graph = parseComponents([SOCIAL])[0]!;
    expect(graph.events.map((e) => e.tag)).toEqual([
      'create_node',
      'update_node',
      'delete_node',
      'create_relationship',
      'delete_relationship',
      'find-connections',
    ]);
    expect(graph.events.at(-1)?.description).toBe('Who follows whom');
  });

  it('drops GRAPH steps that start with the input each operation takes', () => {
    const graph = parseComponents([SOCIAL])[0]!;
    expect(componentEvent(graph, 'create_node')).toEqual({
      type: 'GRAPH',
      event: 'create_node',
      app: 'social',
      input: { labels: ['User'], properties: {} },
    });
    expect(componentEvent(graph, 'find-connections').input).toEqual({ params: {} });
    const first = componentEvent(graph, 'update_node');
    (first.input.properties as Record<string, unknown>).x = 1;
    expect(componentEvent(graph, 'update_node').input).toEqual({ id: '', properties: {} });
  });

  it('leaves other kinds as they were', () => {
    const app = parseComponents([{ tag: 'stripe', kind: 'app', events: { charge: {} } }])[0]!;
    expect(app.events).toEqual([{ tag: 'charge', description: '' }]);
    expect(componentEvent(app, 'charge')).toEqual({ type: 'ACTION', event: 'charge', app: 'stripe', input: {} });
  });
});
