// Card text cut to fit by an estimate of glyph widths. CSS ellipsis would need
// `overflow: hidden` on every row — a clip per row that the browser's compositor handles on
// every frame of a pan, which a 2,500-row canvas feels.

import { isRecord } from './json';
import { CARD_WIDTH } from './layout';
import type { EventSpec } from './spec';

// Average advance per character at the card's font sizes (px).
const TAG_CHAR = 7.4; // 12.5px semibold
const SUB_CHAR = 6.1; // 11px regular
const HEADER_CHAR = 8.2; // 13.5px bold
const BADGE_CHAR = 5.6; // 10px

export function cut(text: string, max: number): string {
  if (max <= 0) return '';
  return text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text;
}

/** An event row's subtitle: its component and event; for the steps that end a run, what
 * they end it with (the keys of a RETURN's output mapping, a FAIL's message). */
export function eventSubtitle(event: EventSpec): string {
  if (event.type === 'RETURN') {
    const output = event.input.output;
    if (isRecord(output)) return `returns {${Object.keys(output).join(', ')}}`;
    return output === undefined || output === null ? 'returns null' : `returns ${JSON.stringify(output)}`;
  }
  if (event.type === 'FAIL') {
    const message = event.input.message;
    return `raises ${typeof message === 'string' && message ? JSON.stringify(message) : '(no message)'}`;
  }
  return [event.app, event.event].filter(Boolean).join(' · ');
}

/** The small badges an event row shows (label, tooltip). */
export function eventBadges(event: EventSpec): { label: string; title: string; tone: '' | 'soft' | 'strong' }[] {
  const out: { label: string; title: string; tone: '' | 'soft' | 'strong' }[] = [];
  if (event.condition) out.push({ label: 'if', title: `if ${event.condition}`, tone: '' });
  if (event.retries) out.push({ label: `↻${event.retries}`, title: `${event.retries} retries`, tone: '' });
  if (event.allow_fail) out.push({ label: 'may fail', title: 'allow_fail: the run goes on if it fails', tone: 'soft' });
  if (event.critical) out.push({ label: 'critical', title: 'critical (rolled back first)', tone: 'strong' });
  if (event.rollback) out.push({ label: '⟲', title: `rollback: ${event.rollback.event}`, tone: '' });
  if (event.type === 'FOREACH' && event.loop) {
    const body = (event.loop.body ?? []).map((b) => b.tag || b.event);
    out.push({ label: `×${body.length}`, title: `per item of ${event.loop.items}: ${body.join(' → ')}`, tone: '' });
    if (event.loop.max_concurrency && event.loop.max_concurrency > 1) out.push({ label: `∥${event.loop.max_concurrency}`, title: `up to ${event.loop.max_concurrency} items at once`, tone: 'soft' });
  }
  if (event.type === 'RETURN' || event.type === 'FAIL') out.push({ label: 'ends run', title: 'the run ends here when this step runs', tone: 'strong' });
  return out;
}

function badgeWidth(labels: readonly string[]): number {
  return labels.reduce((w, l) => w + l.length * BADGE_CHAR + 13, 0);
}

/** An event row's tag and subtitle, cut to the room the badges leave. */
export function rowText(tag: string, sub: string, badges: readonly string[], extra = 0): [string, string] {
  // Card width less border, paddings, icon and gaps.
  const room = CARD_WIDTH - 3 - 22 - 20 - 16 - badgeWidth(badges) - extra;
  const tagChars = Math.max(4, Math.floor(room / TAG_CHAR));
  const shownTag = cut(tag, tagChars);
  const left = room - shownTag.length * TAG_CHAR - 6;
  return [shownTag, cut(sub, Math.floor(left / SUB_CHAR))];
}

/** A card header's tag, cut to the room the chips leave. */
export function headerText(tag: string, chipsChars: number, chips: number): string {
  const room = CARD_WIDTH - 24 - 30 - 28 - chipsChars * BADGE_CHAR - chips * 20;
  return cut(tag, Math.max(4, Math.floor(room / HEADER_CHAR)));
}
