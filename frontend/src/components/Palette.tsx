// The palette: event types and the product's component events, dragged onto a sequence
// (append/insert) or onto the empty canvas (a new sequence). A click adds to the selection.

import { useMemo, useState, type DragEvent } from 'react';

import { EVENT_TYPE_INFO, componentEvent, typesForKind, type ComponentInfo } from '../lib/catalog';
import type { EventSpec } from '../lib/spec';
import { NEW_EVENT } from '../nodes/dnd';
import { useEditorStore } from '../store/context';
import { useComponents } from './catalogContext';
import { Icon, TypeIcon } from './Icon';

function PaletteItem({ event, title, subtitle, testId }: { event: EventSpec; title: string; subtitle: string; testId: string }) {
  const store = useEditorStore();
  const onDragStart = (e: DragEvent<HTMLDivElement>) => {
    e.dataTransfer.setData(NEW_EVENT, JSON.stringify(event));
    e.dataTransfer.effectAllowed = 'copy';
  };
  const onClick = () => {
    const s = store.getState();
    const target = s.selectedEvent?.seq ?? (s.selected.size === 1 ? [...s.selected][0] : undefined);
    if (target) s.insertEvent(target, structuredClone(event), s.selectedEvent ? s.selectedEvent.index + 1 : undefined);
    else s.addSequence({ events: [structuredClone(event)] });
  };
  return (
    <div className="palette-item" draggable onDragStart={onDragStart} onClick={onClick} data-testid={testId} title="Drag onto a sequence or the canvas · click to add to the selected sequence" role="button" tabIndex={0}>
      <TypeIcon type={event.type} />
      <span className="palette-text">
        <span className="palette-title">{title}</span>
        <span className="palette-sub">{subtitle}</span>
      </span>
      <span className="palette-grip">
        <Icon name="grip" size={14} />
      </span>
    </div>
  );
}

function matches(query: string, ...texts: string[]): boolean {
  const q = query.trim().toLowerCase();
  return !q || texts.some((t) => t.toLowerCase().includes(q));
}

function ComponentGroup({ component, query }: { component: ComponentInfo; query: string }) {
  const type = typesForKind(component.kind)[0];
  const events = component.events.filter((e) => matches(query, e.tag, component.tag, component.name, e.description));
  if (!type || events.length === 0) return null;
  return (
    <div className="palette-group">
      <div className="palette-group-title">
        {component.name} <span className="muted">· {component.kind}</span>
      </div>
      {events.map((e) => (
        <PaletteItem key={e.tag} event={componentEvent(component, e.tag)} title={e.tag} subtitle={e.description && e.description !== e.tag ? e.description : `${component.tag} · ${type}`} testId={`palette-${component.tag}-${e.tag}`} />
      ))}
    </div>
  );
}

export function Palette() {
  const components = useComponents();
  const [query, setQuery] = useState('');
  const flow = useMemo(() => EVENT_TYPE_INFO.filter((i) => i.group === 'flow'), []);
  const connectors = useMemo(() => EVENT_TYPE_INFO.filter((i) => i.group === 'components'), []);
  const show = (list: typeof flow) => list.filter((i) => matches(query, i.label, i.type, i.description));
  return (
    <aside className="palette" data-testid="palette">
      <div className="palette-search">
        <Icon name="search" size={14} />
        <input placeholder="Search events" value={query} onChange={(e) => setQuery(e.target.value)} aria-label="Search events" />
      </div>
      <div className="palette-scroll">
        {components.length ? (
          <div className="palette-section">
            <h3>Components</h3>
            {components.map((c) => (
              <ComponentGroup key={c.tag} component={c} query={query} />
            ))}
          </div>
        ) : null}
        <div className="palette-section">
          <h3>Event types</h3>
          {show(connectors).map((i) => (
            <PaletteItem key={i.type} event={i.template()} title={i.label} subtitle={i.description} testId={`palette-type-${i.type}`} />
          ))}
        </div>
        <div className="palette-section">
          <h3>Flow control</h3>
          {show(flow).map((i) => (
            <PaletteItem key={i.type} event={i.template()} title={i.label} subtitle={i.description} testId={`palette-type-${i.type}`} />
          ))}
        </div>
      </div>
      <div className="palette-foot">Drop on a sequence to add a step · on the canvas for a new sequence</div>
    </aside>
  );
}
