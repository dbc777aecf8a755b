import { describe, expect, it } from 'vitest';

import { asNumber, asString, asText, isRecord, listOf } from '../json';

describe('isRecord', () => {
  it('accepts objects only', () => {
    expect(isRecord({})).toBe(true);
    expect(isRecord({ a: 1 })).toBe(true);
    expect(isRecord([])).toBe(false);
    expect(isRecord(null)).toBe(false);
    expect(isRecord(undefined)).toBe(false);
    expect(isRecord('x')).toBe(false);
    expect(isRecord(3)).toBe(false);
  });
});

describe('asString', () => {
  it('keeps strings and falls back for anything else, numbers included', () => {
    expect(asString('a')).toBe('a');
    expect(asString('')).toBe('');
    expect(asString(3)).toBe('');
    expect(asString(null, 'none')).toBe('none');
    expect(asString({}, 'x')).toBe('x');
  });
});

describe('asText', () => {
  it('keeps strings, writes numbers as text, falls back for anything else', () => {
    expect(asText('a')).toBe('a');
    expect(asText(3)).toBe('3');
    expect(asText(1.5)).toBe('1.5');
    expect(asText(true)).toBe('');
    expect(asText(undefined, 'invalid')).toBe('invalid');
  });
});

describe('asNumber', () => {
  it('keeps finite numbers; null or the fallback otherwise', () => {
    expect(asNumber(2)).toBe(2);
    expect(asNumber(0)).toBe(0);
    expect(asNumber('2')).toBeNull();
    expect(asNumber(Number.NaN)).toBeNull();
    expect(asNumber(Number.POSITIVE_INFINITY)).toBeNull();
    expect(asNumber(undefined, 0)).toBe(0);
    expect(asNumber(7, 0)).toBe(7);
    expect(asNumber(null, 'none')).toBe('none');
  });
});

describe('listOf', () => {
  it('reads plain and paginated lists, [] for anything else', () => {
    expect(listOf([1, 2])).toEqual([1, 2]);
    expect(listOf({ count: 2, results: ['a', 'b'] })).toEqual(['a', 'b']);
    expect(listOf({ results: 'no' })).toEqual([]);
    expect(listOf(null)).toEqual([]);
    expect(listOf('x')).toEqual([]);
  });
});
