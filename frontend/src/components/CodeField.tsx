// Text fields that know the expression language: typing `$` offers references and
// operators, `$Step{` offers the steps that ran before this one, and so on.
// JsonField edits a JSON value and commits only text that parses.

import { useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';

import { complete, type Completion, type CompletionContext } from '../lib/autocomplete';
import { canonical } from '../lib/diff';
import type { Issue } from '../lib/paths';

type FieldElement = HTMLTextAreaElement | HTMLInputElement;

/** Pixel position of the caret inside a text field (mirror-div technique). */
function caretCoords(el: FieldElement, position: number): { left: number; top: number } {
  const div = document.createElement('div');
  const style = getComputedStyle(el);
  for (const prop of ['fontFamily', 'fontSize', 'fontWeight', 'lineHeight', 'letterSpacing', 'padding', 'border', 'boxSizing', 'width', 'tabSize'] as const) {
    div.style[prop] = style[prop];
  }
  div.style.position = 'absolute';
  div.style.visibility = 'hidden';
  div.style.whiteSpace = el instanceof HTMLTextAreaElement ? 'pre-wrap' : 'pre';
  div.style.overflowWrap = 'break-word';
  div.textContent = el.value.slice(0, position);
  const mark = document.createElement('span');
  mark.textContent = '\u200b';
  div.appendChild(mark);
  document.body.appendChild(div);
  const left = mark.offsetLeft - el.scrollLeft;
  const top = mark.offsetTop - el.scrollTop + mark.offsetHeight;
  document.body.removeChild(div);
  return { left: Math.min(left, el.clientWidth - 40), top };
}

export interface CodeFieldProps {
  value: string;
  onChange(text: string): void;
  context: CompletionContext;
  multiline?: boolean;
  rows?: number;
  placeholder?: string;
  disabled?: boolean;
  invalid?: boolean;
  testId?: string;
  label?: string;
}

export function CodeField({ value, onChange, context, multiline = false, rows = 6, placeholder, disabled, invalid, testId, label }: CodeFieldProps) {
  const ref = useRef<FieldElement | null>(null);
  const [completion, setCompletion] = useState<(Completion & { left: number; top: number }) | null>(null);
  const [active, setActive] = useState(0);
  const pendingCaret = useRef<number | null>(null);

  useLayoutEffect(() => {
    if (pendingCaret.current !== null && ref.current) {
      ref.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  });

  const refresh = (text: string, caret: number): void => {
    const c = complete(text, caret, context);
    if (!c || c.items.length === 0 || !ref.current) {
      setCompletion(null);
      return;
    }
    const at = caretCoords(ref.current, caret);
    setCompletion({ ...c, ...at });
    setActive(0);
  };

  const accept = (index: number): void => {
    if (!completion) return;
    const item = completion.items[index];
    if (!item) return;
    const text = value.slice(0, completion.from) + item.insert + value.slice(completion.to);
    const caret = completion.from + item.insert.length;
    pendingCaret.current = caret;
    onChange(text);
    // Chain: after `$Step{` the step list shows at once.
    requestAnimationFrame(() => refresh(text, caret));
  };

  const onKeyDown = (e: KeyboardEvent<FieldElement>): void => {
    if (!completion) return;
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      setActive((a) => (a + 1) % completion.items.length);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      setActive((a) => (a - 1 + completion.items.length) % completion.items.length);
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      accept(active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      setCompletion(null);
    }
  };

  const common = {
    value,
    disabled,
    placeholder,
    spellCheck: false,
    'aria-label': label,
    'aria-invalid': invalid || undefined,
    'data-testid': testId,
    className: `code-field${invalid ? ' invalid' : ''}`,
    onKeyDown,
    onBlur: () => setCompletion(null),
    onChange: (e: { target: FieldElement }) => {
      onChange(e.target.value);
      refresh(e.target.value, e.target.selectionStart ?? e.target.value.length);
    },
  };

  return (
    <div className="code-field-wrap">
      {multiline ? (
        <textarea {...common} ref={(el) => void (ref.current = el)} rows={rows} />
      ) : (
        <input {...common} ref={(el) => void (ref.current = el)} type="text" />
      )}
      {completion ? (
        <ul className="completions" style={{ left: completion.left, top: completion.top + 4 }} role="listbox" data-testid="completions">
          {completion.items.slice(0, 12).map((item, i) => (
            <li
              key={`${item.label}:${item.insert}`}
              role="option"
              aria-selected={i === active}
              className={i === active ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                accept(i);
              }}
            >
              <span className="completion-label">{item.label}</span>
              <span className="completion-detail">{item.detail}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function FieldIssues({ issues }: { issues: readonly Issue[] }) {
  if (!issues.length) return null;
  return (
    <ul className="field-issues" data-testid="field-issues">
      {issues.map((i, n) => (
        <li key={n}>
          {i.path ? <code>{i.path.replace(/^sequences\[\d+\]\.events\[\d+\]\./, '')}</code> : null} {i.message}
        </li>
      ))}
    </ul>
  );
}

export interface JsonFieldProps {
  value: unknown;
  onCommit(value: unknown): void;
  context: CompletionContext;
  /** 'object' refuses arrays and scalars (event inputs are objects). */
  expect?: 'object' | 'any';
  rows?: number;
  disabled?: boolean;
  issues?: readonly Issue[];
  testId?: string;
  label?: string;
}

export function JsonField({ value, onCommit, context, expect = 'object', rows = 8, disabled, issues = [], testId, label }: JsonFieldProps) {
  const pretty = useMemo(() => (value === undefined ? '' : JSON.stringify(value, null, 2)), [value]);
  const [text, setText] = useState(pretty);
  const [error, setError] = useState('');

  // Follow outside changes (undo, another selection) unless the text already means the same.
  useEffect(() => {
    setText((current) => {
      try {
        if (canonical(JSON.parse(current || 'null')) === canonical(value ?? null)) return current;
      } catch {
        /* the user's text is mid-edit and invalid: replace it only if the value moved */
      }
      return pretty;
    });
    setError('');
  }, [pretty, value]);

  const change = (next: string): void => {
    setText(next);
    if (next.trim() === '' && expect === 'any') {
      setError('');
      onCommit(undefined);
      return;
    }
    try {
      const parsed: unknown = JSON.parse(next);
      if (expect === 'object' && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) {
        setError('Must be a JSON object: { "key": value }');
        return;
      }
      setError('');
      onCommit(parsed);
    } catch (e) {
      setError(e instanceof Error ? e.message.replace(/^JSON\.parse: /, '') : 'Invalid JSON');
    }
  };

  return (
    <div className="json-field">
      <CodeField value={text} onChange={change} context={context} multiline rows={rows} disabled={disabled} invalid={!!error || issues.length > 0} testId={testId} label={label} />
      {error ? <div className="json-error">{error}</div> : null}
      <FieldIssues issues={issues} />
    </div>
  );
}
