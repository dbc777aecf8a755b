// A confirmation before an action with side effects (cancel compensates at once, replay
// charges again…): what will happen, an optional reason (kept in the audit log and
// journaled on the run), and an explicit confirm.

import { useEffect, useRef, useState, type ReactNode } from 'react';

export interface Confirmation {
  title: string;
  /** What the action will do, in plain words. */
  consequence: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  run(reason: string): void;
}

export function ConfirmDialog({ confirm, busy, onClose }: { confirm: Confirmation; busy: boolean; onClose(): void }) {
  const [reason, setReason] = useState('');
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    box.current?.focus();
  }, []);
  return (
    <div className="mon-modal-backdrop" onClick={onClose}>
      <div
        className="mon-modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="confirm-title"
        data-testid="confirm-dialog"
        onClick={(e) => e.stopPropagation()}
        onKeyDown={(e) => {
          if (e.key === 'Escape') onClose();
        }}
      >
        <h3 id="confirm-title">{confirm.title}</h3>
        <div className="mon-modal-consequence" data-testid="confirm-consequence">
          {confirm.consequence}
        </div>
        <label className="mon-field">
          <span>Reason (optional; kept in the audit log and on the run)</span>
          <textarea ref={box} rows={3} maxLength={1000} value={reason} onChange={(e) => setReason(e.target.value)} data-testid="confirm-reason" />
        </label>
        <div className="toolbar">
          <button type="button" className="button" onClick={onClose} data-testid="confirm-back">
            Back
          </button>
          <button type="button" className={`button ${confirm.danger ? 'danger' : 'primary'}`} disabled={busy} onClick={() => confirm.run(reason.trim())} data-testid="confirm-ok">
            {confirm.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
