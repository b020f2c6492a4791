/**
 * An agent loop on the typed client (`governed-executor/client`): a session, a streamed command
 * and a blocked command the agent recovers from. The "model" is a fixed plan so the example is
 * deterministic; a real agent asks an LLM for the next command, and for `recover`, with the
 * transcript so far.
 *
 *   GOVERNED_EXECUTOR_URL=http://127.0.0.1:10000 GOVERNED_EXECUTOR_API_KEY=... \
 *     npx tsx examples/node/agent-loop.ts
 */
import { createClient, type ExecuteAnswer, GovernedExecutorError } from "governed-executor/client";

const url = process.env.GOVERNED_EXECUTOR_URL ?? "http://127.0.0.1:10000";
const apiKey = process.env.GOVERNED_EXECUTOR_API_KEY;
const client = createClient(url, apiKey ? { apiKey } : {});

interface Step {
  command: string;
  /** Stream the output as it arrives (for long-running commands). */
  stream?: boolean;
}

const plan: Step[] = [
  // A session keeps the working directory and exported variables between commands.
  { command: "mkdir -p project && cd project && export GREETING=hello" },
  { command: `printf 'print(6 * 7)\\n' > answer.py && echo "$GREETING from $(pwd)"` },
  { command: "for i in 1 2 3; do echo tick $i; sleep 0.3; done; python3 answer.py", stream: true },
  { command: "sudo id -u" },
];

/** The model's answer to a block: an allowed way to the same goal, or none (give up on it). */
function recover(step: Step, rule: string | null | undefined): Step | undefined {
  if (rule === "deny-privilege-escalation" && step.command.startsWith("sudo ")) {
    return { command: step.command.slice("sudo ".length) };
  }
  return undefined;
}

async function run(step: Step, sessionId: string): Promise<ExecuteAnswer> {
  if (!step.stream) return client.execute({ command: step.command, sessionId });
  for await (const event of client.stream({ command: step.command, sessionId })) {
    if (event.event === "stdout" || event.event === "stderr") {
      process.stdout.write(`  [${event.event} ${new Date().toISOString()}] ${event.data.text}`);
    } else if (event.event === "result") {
      return event.data;
    } else if (event.event === "error") {
      throw new Error(`refused while streaming: ${event.data.error.code}`);
    }
  }
  throw new Error("the stream ended without a result");
}

const { session } = await client.sessions.create();
console.log(`session ${session.id}`);
const transcript: { command: string; outcome: string; rule?: string | null }[] = [];
try {
  for (const planned of plan) {
    let step: Step | undefined = planned;
    while (step) {
      console.log(`$ ${step.command}`);
      const { result, session: state } = await run(step, session.id);
      transcript.push({
        command: step.command,
        outcome: result.outcome,
        ...(result.decision ? { rule: result.decision.rule } : {}),
      });
      if (result.blocked) {
        // Blocked is an answer, not an error: which rule said no, then what the agent does.
        console.log(`  BLOCKED by ${result.decision?.rule}: ${result.message}`);
        step = recover(step, result.decision?.rule);
        continue;
      }
      if (!step.stream) process.stdout.write(result.stdout.replace(/^(?=.)/gm, "  "));
      console.log(`  exit ${result.exitCode}; the next command starts in ${state?.cwd}`);
      step = undefined;
    }
  }
} catch (error) {
  // Refusals before a command runs: a bad key, a rate limit, a busy session, enforcement down.
  if (!(error instanceof GovernedExecutorError)) throw error;
  console.error(`refused: HTTP ${error.status} ${error.message}`);
  process.exitCode = 1;
} finally {
  const { deleted } = await client.sessions.delete(session.id);
  console.log(`session ${session.id} closed: ${deleted}`);
}
console.log(`transcript ${JSON.stringify(transcript)}`);
