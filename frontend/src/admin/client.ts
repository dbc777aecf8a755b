// The admin pages' calls to /api/v1, on top of the app's Api (session + CSRF, errors as
// ApiError). Every answer goes through a parser in ./lib.

import type { Api } from '../api';
import {
  auditQuery,
  parseAuditPage,
  parseComponentConfig,
  parseEnv,
  parseEnvDiff,
  parseEnvs,
  parseMatrix,
  parseMembers,
  parsePreview,
  type AuditFilter,
  type AuditPage,
  type ComponentConfig,
  type Env,
  type EnvDiff,
  type Matrix,
  type Member,
  type Preview,
} from './lib';

export interface PromoteArgs {
  workflow: string;
  fromEnv: string;
  toEnv: string;
  version: number | null;
  through: boolean;
}

export interface ComponentRef {
  tag: string;
  kind: string;
  name: string;
}

export class AdminClient {
  constructor(
    private readonly api: Api,
    private readonly product: string,
  ) {}

  private get p(): string {
    return `/products/${encodeURIComponent(this.product)}`;
  }

  async environments(): Promise<Env[]> {
    return parseEnvs(await this.api.request('GET', `${this.p}/environments/`));
  }

  async createEnvironment(body: { slug: string; name: string; is_production: boolean }): Promise<void> {
    await this.api.request('POST', `${this.p}/environments/`, body);
  }

  async updateEnvironment(slug: string, body: { name?: string; slug?: string }): Promise<Env | null> {
    return parseEnv(await this.api.request('PATCH', `${this.p}/environments/${encodeURIComponent(slug)}/`, body));
  }

  /** Set an environment's retention (every key; null: the product default). */
  async updateRetention(slug: string, retention: Record<string, number | null>): Promise<Env | null> {
    return parseEnv(await this.api.request('PATCH', `${this.p}/environments/${encodeURIComponent(slug)}/`, { retention }));
  }

  async deleteEnvironment(slug: string): Promise<void> {
    await this.api.request('DELETE', `${this.p}/environments/${encodeURIComponent(slug)}/`);
  }

  async reorder(order: string[]): Promise<Env[]> {
    return parseEnvs(await this.api.request('POST', `${this.p}/environments/reorder`, { order }));
  }

  async markProduction(slug: string): Promise<void> {
    await this.api.request('POST', `${this.p}/environments/${encodeURIComponent(slug)}/production`);
  }

  async unmarkProduction(slug: string): Promise<void> {
    await this.api.request('DELETE', `${this.p}/environments/${encodeURIComponent(slug)}/production`);
  }

  async envDiff(a: string, b: string): Promise<EnvDiff> {
    const q = new URLSearchParams({ a, b }).toString();
    return parseEnvDiff(await this.api.request('GET', `${this.p}/environments/diff?${q}`));
  }

  async components(): Promise<ComponentRef[]> {
    const body = await this.api.request('GET', `${this.p}/components/`);
    const items = Array.isArray(body) ? body : [];
    return items
      .filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null && typeof (c as Record<string, unknown>).tag === 'string')
      .map((c) => ({ tag: String(c.tag), kind: typeof c.kind === 'string' ? c.kind : '', name: typeof c.name === 'string' ? c.name : '' }));
  }

  private configUrl(component: string, env: string): string {
    return `${this.p}/components/${encodeURIComponent(component)}/config/${encodeURIComponent(env)}`;
  }

  async componentConfig(component: string, env: string): Promise<ComponentConfig> {
    return parseComponentConfig(await this.api.request('GET', this.configUrl(component, env)));
  }

  async saveComponentConfig(
    component: string,
    env: string,
    body: { config: object; variables: object; constants: object; secrets: Record<string, string | null> },
  ): Promise<ComponentConfig> {
    return parseComponentConfig(await this.api.request('PUT', this.configUrl(component, env), body));
  }

  async matrix(): Promise<Matrix> {
    return parseMatrix(await this.api.request('GET', `${this.p}/matrix`));
  }

  private wf(tag: string): string {
    return `${this.p}/workflows/${encodeURIComponent(tag)}`;
  }

  async setActivation(workflow: string, env: string, active: boolean, version: number | null): Promise<void> {
    await this.api.request('PUT', `${this.wf(workflow)}/activations/${encodeURIComponent(env)}`, { active, version });
  }

  async versions(workflow: string): Promise<number[]> {
    const body = await this.api.request('GET', `${this.wf(workflow)}/versions/`);
    return (Array.isArray(body) ? body : [])
      .map((v) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>).number : null))
      .filter((n): n is number => typeof n === 'number')
      .sort((a, b) => b - a);
  }

  async promote(args: PromoteArgs, preview: boolean): Promise<Preview> {
    const body = { from_env: args.fromEnv, to_env: args.toEnv, version: args.version, through: args.through };
    const url = `${this.wf(args.workflow)}/promote${preview ? '?preview=1' : ''}`;
    return parsePreview(await this.api.request('POST', url, body));
  }

  async members(): Promise<Member[]> {
    return parseMembers(await this.api.request('GET', `${this.p}/members/`));
  }

  async setMember(username: string, role: string): Promise<void> {
    await this.api.request('POST', `${this.p}/members/`, { username, role });
  }

  async removeMember(username: string): Promise<void> {
    await this.api.request('DELETE', `${this.p}/members/${encodeURIComponent(username)}/`);
  }

  async audit(filter: AuditFilter, offset: number): Promise<AuditPage> {
    return parseAuditPage(await this.api.request('GET', `${this.p}/audit/?${auditQuery(filter, offset)}`));
  }
}
