// Members: who may do what in the product. Admins add people, change their role and
// remove them; everyone else sees the list.
import { useCallback, useEffect, useState, type FormEvent } from 'react';

import { AdminFrame, errorText, useAdmin } from './AdminNav';
import { ROLE_HELP, ROLES, type Member, type RoleName } from './lib';

export function MembersPage() {
  const { client, isAdmin } = useAdmin();
  const [members, setMembers] = useState<Member[] | null>(null);
  const [error, setError] = useState('');
  const [username, setUsername] = useState('');
  const [role, setRole] = useState<RoleName>('viewer');

  const load = useCallback(() => {
    client.members().then(setMembers, (e: unknown) => setError(errorText(e)));
  }, [client]);
  useEffect(load, [load]);

  const act = async (fn: () => Promise<void>) => {
    setError('');
    try {
      await fn();
      load();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const add = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      await client.setMember(username.trim(), role);
      setUsername('');
    });
  };

  return (
    <AdminFrame section="members" title="Members" subtitle="Roles are per product; superusers are admins everywhere.">
      <ul className="role-help">
        {ROLES.map((r) => (
          <li key={r}>
            <strong>{r}</strong> — {ROLE_HELP[r]}
          </li>
        ))}
      </ul>
      {error ? <div className="alert" data-testid="members-error">{error}</div> : null}
      {members ? (
        <table className="table" data-testid="members-table">
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>Member since</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr key={m.username} data-testid={`member-${m.username}`}>
                <td>
                  <strong>{m.username}</strong>
                </td>
                <td>
                  {isAdmin ? (
                    <select value={m.role} onChange={(e) => act(() => client.setMember(m.username, e.target.value))} aria-label={`Role of ${m.username}`} data-testid={`member-${m.username}-role`}>
                      {ROLES.map((r) => (
                        <option key={r} value={r}>
                          {r}
                        </option>
                      ))}
                    </select>
                  ) : (
                    m.role
                  )}
                </td>
                <td className="muted">{m.since ? new Date(m.since).toLocaleDateString() : ''}</td>
                <td className="row-actions">
                  {isAdmin ? (
                    <button type="button" className="button small danger" onClick={() => window.confirm(`Remove ${m.username} from this product?`) && act(() => client.removeMember(m.username))} data-testid={`member-${m.username}-remove`}>
                      Remove
                    </button>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="muted">Loading…</p>
      )}
      {isAdmin ? (
        <form className="inline-form card" onSubmit={add} data-testid="add-member-form">
          <input placeholder="username" value={username} onChange={(e) => setUsername(e.target.value)} required aria-label="Username" data-testid="add-member-username" />
          <select value={role} onChange={(e) => setRole(e.target.value as RoleName)} aria-label="Role" data-testid="add-member-role">
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
          <button type="submit" className="button primary" data-testid="add-member-submit">
            Add member
          </button>
        </form>
      ) : null}
    </AdminFrame>
  );
}
