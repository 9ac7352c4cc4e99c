// ext4 images without root or mount: pinned mkfs settings, the sparse data disk, and debugfs scripting.
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { exec } from '../exec.ts';
import { UserError } from '../error.ts';

/**
 * mke2fs settings written to our own MKE2FS_CONFIG, so the host's /etc/mke2fs.conf cannot change the bytes
 * and no "small" profile switches block or inode size. Features are Debian 12's ext4 defaults (kernel ≥ 5.10
 * reads them); orphan_file and metadata_csum_seed are left out for older guest kernels.
 */
const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`;

/** `mke2fs 1.47.0 (5-Feb-2023)`: tool identity for keys and records. */
export async function mke2fsVersion(): Promise<string> {
  const r = await exec('mke2fs', ['-V'], { nothrow: true, timeoutMs: 10_000 });
  return (r.stderr + r.stdout).split('\n').find((l) => l.startsWith('mke2fs'))?.trim() ?? 'unknown';
}

/** A UUID derived from a seed string: the same seed gives the same file-system identity on any machine. */
export function seededUuid(seed: string, purpose: string): string {
  const b = createHash('sha256').update(`sovereign-ext4\0${purpose}\0${seed}`).digest();
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Environment for mke2fs/debugfs: pinned config and clock (1.47.0 ignores SOURCE_DATE_EPOCH). */
export async function e2fsEnv(workDir: string, epoch?: number): Promise<NodeJS.ProcessEnv> {
  const conf = join(workDir, 'mke2fs.conf');
  await fs.writeFile(conf, MKE2FS_CONF);
  const env: NodeJS.ProcessEnv = { ...process.env, MKE2FS_CONFIG: conf };
  if (epoch !== undefined) env.E2FSPROGS_FAKE_TIME = String(epoch);
  return env;
}

/** A sparse file of `size` bytes (no blocks allocated). */
export async function sparseFile(path: string, size: number): Promise<void> {
  const h = await fs.open(path, 'w', 0o644);
  // An explicit mode: the output's mode is part of its hash, so the umask must not change it.
  try { await h.truncate(size); await h.chmod(0o644); } finally { await h.close(); }
}

export interface DataDiskOptions {
  out: string;
  sizeBytes: number;
  /** ext4 volume label, at most 16 bytes. */
  label: string;
}

/** The empty data disk: a sparse ext4 file, root-owned root directory, tables initialised lazily by the guest. */
export async function createDataDisk(o: DataDiskOptions): Promise<void> {
  const work = await fs.mkdtemp(join(dirname(o.out), '.data-disk-'));
  try {
    await sparseFile(o.out, o.sizeBytes);
    // lazy init keeps the file sparse (the 4G disk costs a few MiB to push); safe because the file is all zeros.
    await exec('mkfs.ext4', ['-F', '-q', '-L', o.label.slice(0, 16), '-E', 'lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0', o.out], { env: await e2fsEnv(work) });
    // It will hold the service's data (database files, password hashes): private, here and on the device.
    await fs.chmod(o.out, 0o600);
  } catch (e) {
    await fs.rm(o.out, { force: true });
    throw e;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** Quotes a path for a debugfs script (ss parser: double quotes, `""` for a literal quote). */
export function dfsQuote(path: string): string {
  if (/[\n\r\0]/.test(path)) throw new UserError(`cannot put a file name with a line break into an ext4 image: ${JSON.stringify(path)}`);
  return `"${path.replaceAll('"', '""')}"`;
}

/** Runs a debugfs script against `image` (read-write). debugfs exits 0 on failed commands, so stderr decides. */
export async function runDebugfs(image: string, script: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
  const file = join(dirname(image), `.debugfs-${process.pid}-${Date.now()}.script`);
  await fs.writeFile(file, script);
  try {
    const r = await exec('debugfs', ['-w', '-f', file, image], { env, signal, maxBuffer: 1024 });
    const errors = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
    if (errors.length) throw new UserError(`debugfs could not apply ${errors.length} change(s) to ${image}`, { details: errors.slice(0, 10) });
  } finally {
    await fs.rm(file, { force: true });
  }
}
