// Input forms from a workflow's (or a signal's) input schema. Schemas come as JSON Schema or
// as the seed's shorthand ({field: 'string', other: 'number?'}); `normalizeSchema` mirrors
// runtime/services.py:schema_normalize so the form shows what the server will check.

import { isRecord, type JsonRecord } from '../lib/json';

const SCHEMA_KEYS = ['type', 'properties', '$schema', 'required', 'items', 'anyOf', 'oneOf', 'allOf', 'enum', '$ref'];
const SHORTHAND = ['string', 'number', 'integer', 'boolean', 'object', 'array'];

function shorthandType(text: string): JsonRecord {
  if (text.endsWith('[]')) return { type: 'array', items: shorthandType(text.slice(0, -2)) };
  return SHORTHAND.includes(text) ? { type: text } : {};
}

export function normalizeSchema(schema: unknown): JsonRecord {
  if (!isRecord(schema) || Object.keys(schema).length === 0) return {};
  if (SCHEMA_KEYS.some((k) => k in schema)) return schema;
  const properties: JsonRecord = {};
  const required: string[] = [];
  for (const [name, spec] of Object.entries(schema)) {
    let optional = false;
    if (typeof spec === 'string') {
      let text = spec.trim();
      if (text.endsWith('?')) {
        optional = true;
        text = text.slice(0, -1);
      }
      properties[name] = shorthandType(text);
    } else if (isRecord(spec)) {
      const inner = normalizeSchema(spec);
      properties[name] = Object.keys(inner).length ? inner : { type: 'object' };
    } else {
      properties[name] = {};
    }
    if (!optional) required.push(name);
  }
  const out: JsonRecord = { type: 'object', properties };
  if (required.length) out.required = required;
  return out;
}

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'json';

export interface Field {
  name: string;
  kind: FieldKind;
  required: boolean;
  description: string;
  options: string[] | null;
}

/** The form fields of an object schema (anything else: one JSON field). */
export function formFields(schema: unknown): Field[] {
  const s = normalizeSchema(schema);
  if (!isRecord(s.properties)) return [];
  const required = Array.isArray(s.required) ? s.required.map(String) : [];
  return Object.entries(s.properties).map(([name, prop]) => {
    const p = isRecord(prop) ? prop : {};
    const type = typeof p.type === 'string' ? p.type : '';
    const kind: FieldKind = ['string', 'number', 'integer', 'boolean'].includes(type) ? (type as FieldKind) : 'json';
    const options = Array.isArray(p.enum) ? p.enum.map(String) : null;
    return { name, kind, required: required.includes(name), description: typeof p.description === 'string' ? p.description : '', options };
  });
}

export type FormValues = Record<string, string | boolean>;

/** Form values → the JSON the server gets; errors name the field. */
export function formToJson(fields: Field[], values: FormValues): { value: Record<string, unknown>; errors: Record<string, string> } {
  const value: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of fields) {
    const raw = values[f.name];
    if (f.kind === 'boolean') {
      if (raw !== undefined) value[f.name] = raw === true;
      else if (f.required) value[f.name] = false;
      continue;
    }
    const text = typeof raw === 'string' ? raw.trim() : '';
    if (text === '') {
      if (f.required) errors[f.name] = 'required';
      continue;
    }
    if (f.kind === 'string') value[f.name] = raw;
    else if (f.kind === 'number' || f.kind === 'integer') {
      const n = Number(text);
      if (!Number.isFinite(n) || (f.kind === 'integer' && !Number.isInteger(n))) errors[f.name] = `must be ${f.kind === 'integer' ? 'an integer' : 'a number'}`;
      else value[f.name] = n;
    } else {
      try {
        value[f.name] = JSON.parse(text);
      } catch {
        errors[f.name] = 'must be JSON';
      }
    }
  }
  return { value, errors };
}

/** A JSON value → form values (for "restart with edited input"). */
export function jsonToForm(fields: Field[], input: unknown): FormValues {
  const src = isRecord(input) ? input : {};
  const out: FormValues = {};
  for (const f of fields) {
    const v = src[f.name];
    if (v === undefined) continue;
    if (f.kind === 'boolean') out[f.name] = v === true;
    else if (f.kind === 'json') out[f.name] = JSON.stringify(v);
    else out[f.name] = String(v);
  }
  return out;
}
