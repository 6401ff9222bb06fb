/**
 * Module resolve hook (registered by helpers/redis-v5.ts): the specifier
 * `redis` resolves to `redis5`, the npm alias of the oldest node-redis
 * major in the peer range (`"redis5": "npm:redis@^5.6.0"`), so the engine
 * and the tests run on it unchanged. Everything else resolves as usual.
 */
interface ResolveContext {
  conditions: string[];
  importAttributes: Record<string, string>;
  parentURL?: string;
}
type NextResolve = (specifier: string, context?: ResolveContext) => Promise<{ url: string; format?: string | null }>;

export async function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<{ url: string; format?: string | null }> {
  return nextResolve(specifier === 'redis' ? 'redis5' : specifier, context);
}
