// Shared form pieces: an action's busy and error state, a labelled text field, an inline form.
import {
  type FormEvent,
  type InputHTMLAttributes,
  type ReactNode,
  type TextareaHTMLAttributes,
  useCallback,
  useId,
  useState,
} from "react";
import { FormError } from "./components";

/**
 * Busy and error state of one action. `run(work, done)` marks it busy, clears the last error
 * (unless `keepError`), then calls `done` with the result or keeps the error; it never rejects.
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = useCallback(
    <T,>(work: () => Promise<T>, done: (value: T) => void, keepError = false): Promise<void> => {
      setBusy(true);
      if (!keepError) setError(null);
      return work().then(
        (value) => {
          setBusy(false);
          done(value);
        },
        (err: unknown) => {
          setBusy(false);
          setError(err);
        },
      );
    },
    [],
  );
  return { busy, error, setError, run };
}

/** A `.field`: a label and its text input (with an optional hint under it). */
export function TextField({
  label,
  value,
  onChange,
  className = "input",
  hint,
  ...rest
}: {
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  className?: string;
  hint?: ReactNode;
} & Omit<InputHTMLAttributes<HTMLInputElement>, "id" | "value" | "onChange" | "className">) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        className={className}
        aria-describedby={hint ? `${id}-hint` : undefined}
        {...rest}
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

/** A `.field` with a multi-line text area (JSON documents), monospaced. */
export function TextAreaField({
  label,
  value,
  onChange,
  hint,
  rows = 8,
  ...rest
}: {
  label: ReactNode;
  value: string;
  onChange: (value: string) => void;
  hint?: ReactNode;
  rows?: number;
} & Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, "id" | "value" | "onChange" | "rows">) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        className="input mono"
        rows={rows}
        spellCheck={false}
        aria-describedby={hint ? `${id}-hint` : undefined}
        {...rest}
        value={value}
        onChange={(e) => onChange(e.target.value)}
      />
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

/**
 * A `.form-inline` form: its fields, its error, then a submit button (labelled `busyLabel` while
 * busy, if given), any `actions`, and Cancel if `onCancel`. Disabled while busy.
 */
export function InlineForm({
  onSubmit,
  busy,
  error,
  submitLabel,
  busyLabel,
  onCancel,
  actions,
  children,
}: {
  onSubmit: () => void;
  busy: boolean;
  error: unknown;
  submitLabel: string;
  busyLabel?: string;
  onCancel?: () => void;
  actions?: ReactNode;
  children: ReactNode;
}) {
  return (
    <form
      className="form form-inline"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        onSubmit();
      }}
    >
      <fieldset disabled={busy}>
        {children}
        <FormError error={error} />
        <div className="actions">
          <button type="submit" className="btn btn-primary">
            {busy && busyLabel ? busyLabel : submitLabel}
          </button>
          {actions}
          {onCancel ? (
            <button type="button" className="btn" onClick={onCancel}>
              Cancel
            </button>
          ) : null}
        </div>
      </fieldset>
    </form>
  );
}
