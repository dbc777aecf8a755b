// The repository's spec fixtures (shared with the Python and browser tests).
import mainSequenceJson from '../../../../tests/fixtures/main_sequence.json';
import orderFulfillmentJson from '../../../../tests/fixtures/order_fulfillment.json';
import { parseSpec, type EventSpec, type SequenceSpec, type WorkflowSpec } from '../spec';

export const mainSequence = (): WorkflowSpec => parseSpec(structuredClone(mainSequenceJson));
export const orderFulfillment = (): WorkflowSpec => parseSpec(structuredClone(orderFulfillmentJson));

export function ev(tag: string, input: EventSpec['input'] = {}): EventSpec {
  return { type: 'ACTION', event: tag, tag, app: 'api', input };
}

export function seq(tag: string, parents: string[] = [], events: EventSpec[] = []): SequenceSpec {
  return { tag, parents, events };
}

export function spec(sequences: SequenceSpec[]): WorkflowSpec {
  return parseSpec({ sequences });
}
