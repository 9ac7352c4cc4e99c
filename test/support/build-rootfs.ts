// Test helper process: builds one rootfs.img from JSON options in argv[2] (run as another user by tests).
import { buildRootfs, type RootfsOptions } from '../../lib/build/rootfs.ts';

await buildRootfs(JSON.parse(process.argv[2]) as RootfsOptions);
