import { buildRootfs } from '../lib/build/rootfs.ts';
const t0 = Date.now();
await buildRootfs({ tar: '/tmp/sov-prof/image.tar', out: '/tmp/sov-prof/out.img', sizeBytes: 512 * 1024 * 1024, initSh: '/work/main/vm/sql/init.sh', workDir: '/tmp/sov-prof', seed: 'x',
  onProgress: (d, t, l) => console.log(((Date.now() - t0) / 1000).toFixed(1), l) });
