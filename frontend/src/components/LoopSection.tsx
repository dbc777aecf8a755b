// The inspector's part for a FOREACH step: the list it loops over, how many items run at
// once, and its body (the steps run per item, edited as JSON; shown as a list of steps).

import type { CompletionContext } from '../lib/autocomplete';
import { loopOf, newLoop } from '../lib/loops';
import type { Issue } from '../lib/paths';
import { stepTag, type EventSpec, type LoopSpec } from '../lib/spec';
import { CodeField, FieldIssues, JsonField } from './CodeField';
import { TypeIcon } from './Icon';

export function LoopSection({ event, onChange, context, issues }: { event: EventSpec; onChange(loop: LoopSpec, key: string): void; context: CompletionContext; issues: readonly Issue[] }) {
  const loop = event.loop;
  if (!loop) {
    return (
      <div data-testid="loop-section">
        <p className="help">A FOREACH step needs a list and a body.</p>
        <button type="button" className="button" onClick={() => onChange(newLoop() as unknown as LoopSpec, 'loop-new')} data-testid="loop-add">
          Add a loop
        </button>
        <FieldIssues issues={issues} />
      </div>
    );
  }
  const summary = loopOf(event);
  return (
    <div data-testid="loop-section">
      <label className="field">
        <span className="field-label">
          Items<span className="field-hint">a list, resolved when the step starts</span>
        </span>
        <CodeField value={loop.items} onChange={(t) => onChange({ ...loop, items: t }, 'loop-items')} context={context} placeholder="$Input{items}" testId="field-loop-items" />
      </label>
      <label className="field">
        <span className="field-label">
          Max concurrency<span className="field-hint">items at once</span>
        </span>
        <input
          type="number"
          min={1}
          max={10000}
          value={loop.max_concurrency ?? ''}
          placeholder="1 (one after the other)"
          onChange={(e) => {
            const n = Number.parseInt(e.target.value, 10);
            onChange({ ...loop, max_concurrency: Number.isFinite(n) && n >= 1 ? n : undefined }, 'loop-conc');
          }}
          data-testid="field-loop-concurrency"
        />
      </label>
      <ol className="loop-body" data-testid="loop-body">
        {(summary?.body ?? []).map((step, i) => (
          <li key={`${i}:${stepTag(step)}`}>
            <TypeIcon type={step.type} size={12} /> <code>{stepTag(step)}</code> <span className="help">{step.type}</span>
          </li>
        ))}
      </ol>
      <JsonField value={loop.body} expect="any" onCommit={(v) => Array.isArray(v) && onChange({ ...loop, body: v as EventSpec[] }, 'loop-body')} context={context} rows={8} testId="field-loop-body" label="Body" />
      <p className="help">
        In the body, <code>$Item{'{path}'}</code> is the current item, <code>$Index</code> its position and <code>$Step{'{tag}'}</code> of a body step the same iteration&apos;s. After the loop, <code>$Step{'{'}{stepTag(event)}{'}'}</code> is the list of each iteration&apos;s last result.
      </p>
      <FieldIssues issues={issues} />
    </div>
  );
}
