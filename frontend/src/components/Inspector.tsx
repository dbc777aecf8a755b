// The right-hand panel: the selected event, else the selected sequence, else the workflow.
// Every change is one store commit (typing in one field coalesces into one undo step);
// validation errors show under the field their path points at.

import { useMemo, useState, type ReactNode } from 'react';

import type { CompletionContext } from '../lib/autocomplete';
import { typeInfo } from '../lib/catalog';
import { canConnect } from '../lib/graph';
import { eventFieldIssues, eventIssues, type Issue } from '../lib/paths';
import {
  COMPONENT_KINDS,
  ENDING_TYPES,
  EVENT_TYPES,
  TAG_RE,
  stepTag,
  type Duration,
  type EventSpec,
  type EventType,
  type Json,
  type JsonObject,
  type RollbackSpec,
  type RollbackStrategy,
  type SequenceSpec,
  type WorkflowSpec,
} from '../lib/spec';
import { useEditor, useEditorShallow, useEditorStore } from '../store/context';
import type { EventRef } from '../store/editor';
import { useComponents } from './catalogContext';
import { CodeField, FieldIssues, JsonField } from './CodeField';
import { Icon, TypeIcon } from './Icon';
import { LoopSection } from './LoopSection';

function Field({ label, children, hint, issues = [] }: { label: string; children: ReactNode; hint?: string; issues?: readonly Issue[] }) {
  return (
    <label className={`field${issues.length ? ' field-invalid' : ''}`}>
      <span className="field-label">
        {label}
        {hint ? <span className="field-hint">{hint}</span> : null}
      </span>
      {children}
      <FieldIssues issues={issues} />
    </label>
  );
}

/** A tag, edited as a draft and committed on blur or Enter when it is valid and free
 * (the rename then follows the tag in every reference: one undo step). */
function TagField({ tag, hint, taken, what, issues, onRename, testId }: { tag: string; hint: string; taken: ReadonlySet<string>; what: string; issues: readonly Issue[]; onRename: (to: string) => void; testId: string }) {
  const [draft, setDraft] = useState<string | null>(null);
  const error = draft === null || draft === tag ? '' : !TAG_RE.test(draft) ? 'Letters, digits, _ - . (start with a letter or _)' : taken.has(draft) ? `Another ${what} has this tag` : '';
  const commit = () => {
    if (draft !== null && !error && draft !== tag) onRename(draft);
    setDraft(null);
  };
  return (
    <Field label="Tag" hint={hint} issues={issues}>
      <input
        value={draft ?? tag}
        className={error ? 'invalid' : ''}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
        data-testid={testId}
      />
      {error ? <div className="json-error">{error}</div> : null}
    </Field>
  );
}

function Section({ title, children, defaultOpen = true, badge }: { title: string; children: ReactNode; defaultOpen?: boolean; badge?: number }) {
  const [open, setOpen] = useState(defaultOpen);
  return (
    <section className={`inspector-section${open ? ' open' : ''}`}>
      <button type="button" className="section-toggle" onClick={() => setOpen(!open)}>
        <span className="chev">
          <Icon name="chevron" size={12} />
        </span>
        {title}
        {badge ? <span className="issue-badge small">{badge}</span> : null}
      </button>
      {open ? <div className="section-body">{children}</div> : null}
    </section>
  );
}

function parseDuration(text: string): Duration | undefined {
  const t = text.trim();
  if (!t) return undefined;
  return /^\d+$/.test(t) ? Number(t) : t;
}

function parseCount(text: string): number | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

function useComponentTags(): string[] {
  const components = useComponents();
  return useMemo(() => components.map((c) => c.tag), [components]);
}

/** What a RETURN ends the run with (its output mapping) or a FAIL fails it with (its
 * message): the only input these steps take. */
function EndingFields({ event, ctx, issues, onInput }: { event: EventSpec; ctx: CompletionContext; issues: readonly Issue[]; onInput: (input: JsonObject) => void }) {
  if (event.type === 'RETURN') {
    return (
      <Section title="Run output" badge={issues.length}>
        <JsonField value={(event.input.output ?? null) as JsonObject} onCommit={(v) => onInput({ ...event.input, output: (v ?? null) as Json })} context={ctx} expect="any" issues={issues} testId="field-return-output" label="Output mapping" rows={7} />
        <p className="help">The run ends <code>completed</code> with this output (expressions over <code>$Input</code>, <code>$Step</code>…); steps after it do not run.</p>
      </Section>
    );
  }
  const message = typeof event.input.message === 'string' ? event.input.message : '';
  return (
    <Section title="Failure" badge={issues.length}>
      <Field label="Message" hint="the run's error" issues={issues}>
        <CodeField value={message} onChange={(t) => onInput({ ...event.input, message: t })} context={ctx} placeholder="Rate limit exceeded" testId="field-fail-message" invalid={issues.length > 0} />
      </Field>
      <p className="help">The run fails with this message and is compensated per its rollback strategy.</p>
    </Section>
  );
}

function EventInspector({ at }: { at: EventRef }) {
  const store = useEditorStore();
  const spec = useEditor((s) => s.spec);
  const issues = useEditor((s) => s.issues);
  const readOnly = useEditor((s) => s.readOnly);
  const components = useComponents();
  const componentTags = useComponentTags();
  const seqIndex = spec.sequences.findIndex((s) => s.tag === at.seq);
  const seq = spec.sequences[seqIndex];
  const event = seq?.events[at.index];
  if (!seq || !event) return null;

  const ctx: CompletionContext = { spec, seqTag: seq.tag, eventIndex: at.index, components: componentTags };
  const fieldIssues = (field: string) => eventFieldIssues(spec, issues, seqIndex, at.index, field);
  const shown = new Set(['loop', 'input', 'condition', 'retries', 'retry_delay', 'timeout', 'rollback', 'event', 'app', 'tag', 'type', 'backoff', 'allow_fail', 'critical', 'description']);
  const otherIssues = eventIssues(spec, issues, seqIndex, at.index).filter((i) => !shown.has(i.path.replace(/^sequences\[\d+\]\.events\[\d+\]\.?/, '').split(/[.[]/)[0] ?? ''));
  const update = (patch: Partial<EventSpec>, key?: string) => store.getState().updateEvent(at, patch, key);
  const kind = COMPONENT_KINDS[event.type];
  const apps = kind ? components.filter((c) => c.kind === kind) : [];
  const appEvents = components.find((c) => c.tag === event.app)?.events ?? [];
  const tag = stepTag(event);
  const otherTags = new Set(spec.sequences.flatMap((s, i) => s.events.filter((_, j) => !(i === seqIndex && j === at.index)).map(stepTag)));

  const ending = ENDING_TYPES.has(event.type);
  const rollback = event.rollback ?? null;
  const updateRollback = (patch: Partial<RollbackSpec>, key: string) => {
    if (!rollback) return;
    update({ rollback: { ...rollback, ...patch } }, key);
  };

  return (
    <div className="inspector-body" data-testid="event-inspector">
      <header className="inspector-head">
        <TypeIcon type={event.type} size={16} />
        <div className="inspector-title">
          <strong>{tag}</strong>
          <span>
            {typeInfo(event.type).label} in <button type="button" className="link" onClick={() => store.getState().selectSequences([seq.tag])}>{seq.tag}</button> · step {at.index + 1}
          </span>
        </div>
        {!readOnly ? (
          <button type="button" className="icon-button danger" title="Delete event (Del)" onClick={() => store.getState().deleteSelection()} data-testid="delete-event">
            <Icon name="trash" />
          </button>
        ) : null}
      </header>
      <fieldset disabled={readOnly}>
        <Section title="Step">
          <div className="field-row">
            <Field label="Type" issues={fieldIssues('type')}>
              <select value={event.type} onChange={(e) => update({ type: e.target.value as EventType })} data-testid="field-type">
                {EVENT_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </Field>
            <TagField key={`${seq.tag}:${at.index}`} tag={tag} hint="$Step{tag}" taken={otherTags} what="step" issues={fieldIssues('tag')} onRename={(to) => store.getState().renameStep(at, to)} testId="field-tag" />
          </div>
          {kind ? (
            <Field label="Component" hint={kind} issues={fieldIssues('app')}>
              <input list="inspector-apps" value={event.app ?? ''} onChange={(e) => update({ app: e.target.value || undefined })} data-testid="field-app" />
              <datalist id="inspector-apps">
                {apps.map((c) => (
                  <option key={c.tag} value={c.tag}>
                    {c.name}
                  </option>
                ))}
              </datalist>
            </Field>
          ) : null}
          <Field label="Event" issues={fieldIssues('event')}>
            <input list="inspector-events" value={event.event} onChange={(e) => update({ event: e.target.value })} data-testid="field-event" />
            <datalist id="inspector-events">
              {appEvents.map((ev) => (
                <option key={ev.tag} value={ev.tag}>
                  {ev.description}
                </option>
              ))}
            </datalist>
          </Field>
          <Field label="Description" issues={fieldIssues('description')}>
            <input value={event.description ?? ''} onChange={(e) => update({ description: e.target.value || undefined })} />
          </Field>
        </Section>
        {event.type === 'FOREACH' ? (
          <Section title="Loop" badge={fieldIssues('loop').length}>
            <LoopSection event={event} onChange={(loop, key) => update({ loop }, `${key}:${seq.tag}:${at.index}`)} context={ctx} issues={fieldIssues('loop')} />
          </Section>
        ) : null}
        {ending ? (
          <EndingFields event={event} ctx={ctx} issues={fieldIssues('input')} onInput={(input) => update({ input }, `input:${seq.tag}:${at.index}`)} />
        ) : (
          <Section title="Input" badge={fieldIssues('input').length}>
            <JsonField value={event.input} onCommit={(v) => update({ input: v as JsonObject }, `input:${seq.tag}:${at.index}`)} context={ctx} issues={fieldIssues('input')} testId="field-input" label="Input" rows={9} />
            <p className="help">Type <code>$</code> for references: <code>$Input{'{field}'}</code>, <code>$Step{'{tag}{path}'}</code>, <code>$Secret{'{key}'}</code>…</p>
          </Section>
        )}
        <Section title="Run when" badge={fieldIssues('condition').length}>
          <Field label="Condition" hint="skipped when false" issues={fieldIssues('condition')}>
            <CodeField value={event.condition ?? ''} onChange={(t) => update({ condition: t || undefined })} context={ctx} placeholder="$Step{validate}{valid} == true" testId="field-condition" invalid={fieldIssues('condition').length > 0} />
          </Field>
        </Section>
        {ending ? null : (<>
        <Section title="Retries & timeout">
          <div className="field-row">
            <Field label="Retries" issues={fieldIssues('retries')}>
              <input type="number" min={0} max={100} value={event.retries ?? ''} placeholder="0" onChange={(e) => update({ retries: parseCount(e.target.value) })} data-testid="field-retries" />
            </Field>
            <Field label="Retry delay" hint="ms or 5s" issues={fieldIssues('retry_delay')}>
              <input value={event.retry_delay ?? ''} placeholder="0" onChange={(e) => update({ retry_delay: parseDuration(e.target.value) })} data-testid="field-retry-delay" />
            </Field>
          </div>
          <div className="field-row">
            <Field label="Backoff" issues={fieldIssues('backoff')}>
              <select value={event.backoff ?? 'fixed'} onChange={(e) => update({ backoff: e.target.value === 'fixed' ? undefined : 'exponential' })}>
                <option value="fixed">fixed</option>
                <option value="exponential">exponential</option>
              </select>
            </Field>
            <Field label="Timeout" hint="ms or 30s" issues={fieldIssues('timeout')}>
              <input value={event.timeout ?? ''} placeholder="none" onChange={(e) => update({ timeout: parseDuration(e.target.value) })} data-testid="field-timeout" />
            </Field>
          </div>
          <div className="checks">
            <label className="check">
              <input type="checkbox" checked={event.allow_fail ?? false} onChange={(e) => update({ allow_fail: e.target.checked || undefined })} data-testid="field-allow-fail" />
              <span>
                Allow fail <small>the run goes on if this step fails</small>
              </span>
            </label>
            <label className="check">
              <input type="checkbox" checked={event.critical ?? false} onChange={(e) => update({ critical: e.target.checked || undefined })} data-testid="field-critical" />
              <span>
                Critical <small>compensated under critical_only</small>
              </span>
            </label>
          </div>
        </Section>
        <Section title="Rollback" defaultOpen={!!rollback} badge={fieldIssues('rollback').length}>
          <label className="check">
            <input
              type="checkbox"
              checked={!!rollback}
              onChange={(e) =>
                update({ rollback: e.target.checked ? { type: event.type, event: '', app: event.app ?? undefined, input: {} } : undefined })
              }
              data-testid="field-rollback"
            />
            <span>
              Compensate with another event <small>when a later step fails</small>
            </span>
          </label>
          {rollback ? (
            <div className="rollback-box">
              <div className="field-row">
                <Field label="Type">
                  <select value={rollback.type} onChange={(e) => updateRollback({ type: e.target.value as EventType }, 'rb-type')}>
                    {EVENT_TYPES.filter((t) => t !== 'ROLLBACK').map((t) => (
                      <option key={t} value={t}>
                        {t}
                      </option>
                    ))}
                  </select>
                </Field>
                <Field label="Component">
                  <input value={rollback.app ?? ''} onChange={(e) => updateRollback({ app: e.target.value || undefined }, 'rb-app')} />
                </Field>
              </div>
              <Field label="Event">
                <input value={rollback.event} onChange={(e) => updateRollback({ event: e.target.value }, 'rb-event')} data-testid="field-rollback-event" />
              </Field>
              <Field label="Input">
                <JsonField value={rollback.input} onCommit={(v) => updateRollback({ input: v as JsonObject }, 'rb-input')} context={{ ...ctx, eventIndex: at.index + 1 }} rows={5} />
              </Field>
            </div>
          ) : null}
          <FieldIssues issues={fieldIssues('rollback')} />
        </Section>
        </>)}
        {otherIssues.length ? (
          <div className="other-issues">
            <FieldIssues issues={otherIssues} />
          </div>
        ) : null}
      </fieldset>
    </div>
  );
}

function SequenceInspector({ tag }: { tag: string }) {
  const store = useEditorStore();
  const spec = useEditor((s) => s.spec);
  const level = useEditor((s) => s.levels.level.get(tag) ?? 0);
  const issueIndex = useEditor((s) => s.issueIndex);
  const readOnly = useEditor((s) => s.readOnly);
  const componentTags = useComponentTags();
  const seq = spec.sequences.find((s) => s.tag === tag);
  if (!seq) return null;
  const own = issueIndex.bySequence.get(tag)?.own ?? [];
  const issuesFor = (field: string) => own.filter((i) => i.path.replace(/^sequences\[\d+\]\.?/, '').startsWith(field));
  const ctx: CompletionContext = { spec, seqTag: tag, eventIndex: 0, components: componentTags };
  const taken = new Set(spec.sequences.map((s) => s.tag).filter((t) => t !== tag));
  const candidates = spec.sequences.filter((s) => canConnect(spec, s.tag, tag)).map((s) => s.tag);
  const update = (patch: Partial<Omit<SequenceSpec, 'tag' | 'events'>>) => store.getState().updateSequence(tag, patch);

  return (
    <div className="inspector-body" data-testid="sequence-inspector">
      <header className="inspector-head">
        <span className="seq-level big">L{level}</span>
        <div className="inspector-title">
          <strong>{tag}</strong>
          <span>
            Sequence · {seq.events.length} event{seq.events.length === 1 ? '' : 's'} · level {level}
          </span>
        </div>
        {!readOnly ? (
          <button type="button" className="icon-button danger" title="Delete sequence (Del)" onClick={() => store.getState().deleteSelection()} data-testid="delete-sequence">
            <Icon name="trash" />
          </button>
        ) : null}
      </header>
      <fieldset disabled={readOnly}>
        <Section title="Sequence">
          <TagField key={tag} tag={tag} hint="$Sequence{tag}" taken={taken} what="sequence" issues={issuesFor('tag')} onRename={(to) => store.getState().renameSequence(tag, to)} testId="field-seq-tag" />
          <Field label="Description">
            <input value={seq.description ?? ''} onChange={(e) => update({ description: e.target.value || undefined })} />
          </Field>
          <Field label="Skip if" hint="the whole sequence" issues={issuesFor('skip_if')}>
            <CodeField value={seq.skip_if ?? ''} onChange={(t) => update({ skip_if: t || undefined })} context={ctx} placeholder="$Input{skipTests} == true" />
          </Field>
          <Field label="Group" hint="at most options.groups.<group>.max_concurrency at once" issues={issuesFor('group')}>
            <input list="inspector-groups" value={seq.group ?? ''} onChange={(e) => update({ group: e.target.value || undefined })} data-testid="field-seq-group" />
            <datalist id="inspector-groups">
              {Object.keys(spec.options.groups ?? {}).map((g) => (
                <option key={g} value={g} />
              ))}
            </datalist>
          </Field>
        </Section>
        <Section title="Parents" badge={issuesFor('parents').length + issuesFor('level').length}>
          <p className="help">Runs when all its parents have finished (skipped parents count as finished).</p>
          <div className="chips">
            {seq.parents.length === 0 ? <span className="muted">A root: starts the run.</span> : null}
            {seq.parents.map((p) => (
              <span className="chip" key={p}>
                {p}
                {!readOnly ? (
                  <button type="button" title={`Disconnect ${p}`} onClick={() => store.getState().disconnect(p, tag)}>
                    ×
                  </button>
                ) : null}
              </span>
            ))}
          </div>
          {!readOnly && candidates.length ? (
            <select value="" onChange={(e) => e.target.value && store.getState().connect(e.target.value, tag)} data-testid="add-parent">
              <option value="">Add a parent…</option>
              {candidates.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          ) : null}
          <FieldIssues issues={[...issuesFor('parents'), ...issuesFor('level')]} />
        </Section>
        <Section title="Events">
          <ol className="event-list">
            {seq.events.map((e, i) => (
              <li key={`${i}:${stepTag(e)}`}>
                <button type="button" className="event-link" onClick={() => store.getState().selectEvent({ seq: tag, index: i })}>
                  <TypeIcon type={e.type} />
                  <span>{stepTag(e)}</span>
                  <small>{e.type}</small>
                </button>
              </li>
            ))}
          </ol>
        </Section>
      </fieldset>
    </div>
  );
}

const STRATEGIES: RollbackStrategy[] = ['reverse_all', 'critical_only', 'to_checkpoint', 'none'];

function WorkflowInspector() {
  const store = useEditorStore();
  const spec = useEditor((s) => s.spec);
  const workflowIssues = useEditor((s) => s.issueIndex.workflow);
  const readOnly = useEditor((s) => s.readOnly);
  const componentTags = useComponentTags();
  const ctx: CompletionContext = { spec, components: componentTags };
  const issues = (section: string) => workflowIssues.get(section) ?? [];
  const commit = (patch: Partial<WorkflowSpec>, key: string) => store.getState().commit({ ...store.getState().spec, ...patch }, { key });
  const options = spec.options;
  const setOption = (patch: Partial<WorkflowSpec['options']>, key: string) => {
    const next = { ...options, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete (next as Record<string, unknown>)[k];
    commit({ options: next }, key);
  };
  const stats = useEditorShallow((s) => [s.spec.sequences.length, s.spec.sequences.reduce((n, q) => n + q.events.length, 0), s.levels.depth]);

  return (
    <div className="inspector-body" data-testid="workflow-inspector">
      <header className="inspector-head">
        <span className="type-icon" style={{ background: '#0f172a' }}>
          <Icon name="layout" size={14} />
        </span>
        <div className="inspector-title">
          <strong>Workflow</strong>
          <span>
            {stats[0]} sequences · {stats[1]} events · {stats[2]} levels
          </span>
        </div>
      </header>
      {!readOnly ? <p className="help pad">Select a sequence or an event to edit it. Drag events from the palette onto a sequence, or onto the canvas to start a new sequence.</p> : null}
      <fieldset disabled={readOnly}>
        <Section title="Options" badge={issues('options').length}>
          <div className="field-row">
            <Field label="Run timeout" hint="ms or 5m">
              <input value={options.timeout ?? ''} placeholder="none" onChange={(e) => setOption({ timeout: parseDuration(e.target.value) }, 'opt-timeout')} data-testid="field-wf-timeout" />
            </Field>
            <Field label="Max concurrency">
              <input type="number" min={1} value={options.max_concurrency ?? ''} placeholder="unbounded" onChange={(e) => setOption({ max_concurrency: parseCount(e.target.value) }, 'opt-conc')} />
            </Field>
          </div>
          <Field label="Rollback strategy">
            <select value={options.rollback_strategy ?? 'reverse_all'} onChange={(e) => setOption({ rollback_strategy: e.target.value as RollbackStrategy }, 'opt-rb')}>
              {STRATEGIES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Groups" hint='{"deploy": {"max_concurrency": 2}}'>
            <JsonField value={options.groups ?? {}} onCommit={(v) => setOption({ groups: v as NonNullable<WorkflowSpec['options']['groups']> }, 'opt-groups')} context={ctx} rows={3} testId="field-wf-groups" />
          </Field>
          <FieldIssues issues={issues('options')} />
        </Section>
        <Section title="Input schema" defaultOpen={false} badge={issues('input').length}>
          <p className="help">JSON Schema (or the shorthand {'{"field": "string"}'}) that a run's input must match.</p>
          <JsonField value={spec.input} onCommit={(v) => commit({ input: v as JsonObject }, 'wf-input')} context={ctx} issues={issues('input')} rows={8} testId="field-wf-input" />
        </Section>
        <Section title="Output mapping" defaultOpen={false} badge={issues('output').length}>
          <p className="help">What a finished run returns; expressions over steps and input.</p>
          <JsonField value={spec.output} onCommit={(v) => commit({ output: v as WorkflowSpec['output'] }, 'wf-output')} context={ctx} expect="any" issues={issues('output')} rows={6} testId="field-wf-output" />
        </Section>
        <Section title="Signals" defaultOpen={false} badge={issues('signals').length}>
          <p className="help">{'{"approve": {"input": {"approver_id": "string"}}}'}</p>
          <JsonField value={spec.signals} onCommit={(v) => commit({ signals: v as WorkflowSpec['signals'] }, 'wf-signals')} context={ctx} issues={issues('signals')} rows={6} />
        </Section>
        <Section title="Queries" defaultOpen={false} badge={issues('queries').length}>
          <p className="help">{'{"progress": {"output": {"done": "$Run{completed_steps}"}}}'}</p>
          <JsonField value={spec.queries} onCommit={(v) => commit({ queries: v as WorkflowSpec['queries'] }, 'wf-queries')} context={ctx} issues={issues('queries')} rows={6} />
        </Section>
        <Section title="Triggers" defaultOpen={false} badge={issues('triggers').length}>
          <p className="help">{'[{"type": "topic", "event": "broker:topic"}]'}</p>
          <JsonField value={spec.triggers ?? []} onCommit={(v) => commit({ triggers: Array.isArray(v) ? (v as WorkflowSpec['triggers']) : [] }, 'wf-triggers')} context={ctx} expect="any" issues={issues('triggers')} rows={4} />
        </Section>
        {issues('').length ? <FieldIssues issues={issues('')} /> : null}
      </fieldset>
    </div>
  );
}

export function Inspector() {
  const selectedEvent = useEditor((s) => s.selectedEvent);
  const selected = useEditor((s) => s.selected);
  if (selectedEvent) return <EventInspector key={`${selectedEvent.seq}:${selectedEvent.index}`} at={selectedEvent} />;
  if (selected.size === 1) {
    const tag = [...selected][0]!;
    return <SequenceInspector key={tag} tag={tag} />;
  }
  if (selected.size > 1) {
    return (
      <div className="inspector-body">
        <header className="inspector-head">
          <div className="inspector-title">
            <strong>{selected.size} sequences selected</strong>
            <span>Ctrl+C to copy · Del to delete · drag to move together</span>
          </div>
        </header>
      </div>
    );
  }
  return <WorkflowInspector />;
}

