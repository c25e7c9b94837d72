// Runs the TypeScript samples of the product docs exactly as printed, against a running API:
// packs this package, installs the tarball into an empty project, compiles each sample with
// `tsc --strict` and runs it with Node. Only "AUTH_TOKEN" is replaced, by OCTOHOOKS_DOCS_TOKEN;
// the client finds the server through OCTOHOOKS_SERVER_URL, as the docs' users' code would.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = fileURLToPath(new URL("..", import.meta.url));
const samplesDir = join(sdk, "docs-samples");
const token = process.env.OCTOHOOKS_DOCS_TOKEN;
if (!token || !process.env.OCTOHOOKS_SERVER_URL) {
  console.error("set OCTOHOOKS_SERVER_URL and OCTOHOOKS_DOCS_TOKEN (an API key)");
  process.exit(2);
}

const run = (command, args, cwd) =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

const names = (await readdir(samplesDir)).filter((name) => name.endsWith(".ts")).sort();
const samples = await Promise.all(names.map((name) => readFile(join(samplesDir, name), "utf8")));
await checkAgainstSeeds(samples);

const work = await mkdtemp(join(tmpdir(), "octohooks-docs-"));
try {
  const [packed] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", work], sdk));
  const project = join(work, "project");
  await mkdir(project);
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "docs-samples", private: true, type: "module" }),
  );
  run(
    "npm",
    ["install", "--offline", "--no-audit", "--no-fund", join(work, packed.filename)],
    project,
  );
  await writeFile(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        lib: ["es2022"],
        types: [],
        skipLibCheck: false,
        outDir: "out",
      },
      include: ["*.ts"],
    }),
  );
  for (const [index, sample] of samples.entries()) {
    const parts = sample.split('"AUTH_TOKEN"');
    if (parts.length !== 2) throw new Error(`${names[index]}: expected one "AUTH_TOKEN"`);
    await writeFile(join(project, names[index]), parts.join(JSON.stringify(token)));
  }
  run(process.execPath, [join(sdk, "node_modules/typescript/bin/tsc"), "-p", "."], project);
  for (const name of names) {
    run(process.execPath, [join("out", name.replace(/\.ts$/, ".js"))], project);
    console.log(`ran ${name}`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

// The copies in docs-samples/ must be the docs' own text. The docs live beside the repository
// when it is checked out in the project's workspace; elsewhere this check says it was skipped.
async function checkAgainstSeeds(texts) {
  const seeds = process.env.OCTOHOOKS_SEEDS_DIR ?? join(sdk, "../../../shared/seeds");
  if (!existsSync(seeds)) {
    console.log(`docs not found at ${seeds}; copies not compared with them`);
    return;
  }
  const docs = await Promise.all(
    (await readdir(seeds)).map((name) => readFile(join(seeds, name), "utf8")),
  );
  const printed = new Set(
    docs.flatMap((doc) => [...doc.matchAll(/```typescript\n([\s\S]*?)```/g)].map((m) => m[1])),
  );
  for (const [index, text] of texts.entries()) {
    if (!printed.has(text))
      throw new Error(`${names[index]} is not a sample of the docs as printed`);
  }
  if (printed.size !== texts.length) {
    throw new Error(
      `the docs print ${printed.size} distinct samples; docs-samples/ has ${texts.length}`,
    );
  }
}
