/** The engine suite on MemoryEngine. */
import { MemoryEngine } from '../lib/engines/memory.js';
import { engineSuite } from './engine-suite.js';

engineSuite({
  name: 'MemoryEngine',
  create: async () => new MemoryEngine(),
});
