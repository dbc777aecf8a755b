// A form built from an input schema (see ./schema). Unknown shapes fall back to a JSON box.

import { useMemo, useState } from 'react';

import { formFields, formToJson, jsonToForm, type FormValues } from './schema';

export interface SchemaFormProps {
  schema: unknown;
  initial?: unknown;
  submitLabel: string;
  busy?: boolean;
  testId?: string;
  onSubmit(value: Record<string, unknown>): void;
}

export function SchemaForm({ schema, initial, submitLabel, busy = false, testId, onSubmit }: SchemaFormProps) {
  const fields = useMemo(() => formFields(schema), [schema]);
  const [values, setValues] = useState<FormValues>(() => jsonToForm(fields, initial));
  const [raw, setRaw] = useState(() => JSON.stringify(initial ?? {}, null, 2));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const freeForm = fields.length === 0;

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    if (freeForm) {
      try {
        const parsed: unknown = raw.trim() ? JSON.parse(raw) : {};
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
        setErrors({});
        onSubmit(parsed as Record<string, unknown>);
      } catch {
        setErrors({ _: 'must be a JSON object' });
      }
      return;
    }
    const out = formToJson(fields, values);
    setErrors(out.errors);
    if (Object.keys(out.errors).length === 0) onSubmit(out.value);
  };

  return (
    <form className="mon-form" onSubmit={submit} data-testid={testId}>
      {freeForm ? (
        <label className="mon-field">
          <span>Input (JSON)</span>
          <textarea className="mono" rows={5} value={raw} onChange={(e) => setRaw(e.target.value)} name="json" />
          {errors._ ? <em className="mon-error">{errors._}</em> : null}
        </label>
      ) : (
        fields.map((f) => (
          <label key={f.name} className="mon-field">
            <span>
              {f.name}
              {f.required ? ' *' : ''} <small className="muted">{f.kind}</small>
            </span>
            {f.kind === 'boolean' ? (
              <input
                type="checkbox"
                name={f.name}
                checked={values[f.name] === true}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.checked })}
              />
            ) : f.options ? (
              <select name={f.name} value={String(values[f.name] ?? '')} onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}>
                <option value="" />
                {f.options.map((o) => (
                  <option key={o}>{o}</option>
                ))}
              </select>
            ) : (
              <input
                name={f.name}
                className={f.kind === 'json' ? 'mono' : undefined}
                inputMode={f.kind === 'number' || f.kind === 'integer' ? 'decimal' : undefined}
                placeholder={f.kind === 'json' ? 'JSON' : f.description}
                value={String(values[f.name] ?? '')}
                onChange={(e) => setValues({ ...values, [f.name]: e.target.value })}
              />
            )}
            {errors[f.name] ? <em className="mon-error">{errors[f.name]}</em> : null}
          </label>
        ))
      )}
      <div className="form-actions">
        <button type="submit" className="button primary" disabled={busy}>
          {submitLabel}
        </button>
      </div>
    </form>
  );
}
