/**
 * A `deno lint` rule of this repository: no function over 60 lines outside tests (issue 10), so a
 * handler stays one readable action. Test files, whose arrange/act/assert bodies read top to
 * bottom, are exempt.
 */
const MAX_LINES = 60;

function linesOf(source: string, range: [number, number]): number {
  let lines = 1;
  for (let i = range[0]; i < range[1]; i++) if (source.charCodeAt(i) === 10) lines++;
  return lines;
}

const plugin: Deno.lint.Plugin = {
  name: "oe",
  rules: {
    "max-function-lines": {
      create(context) {
        if (/_test\.ts$|\/testing\//.test(context.filename)) return {};
        const check = (node: Deno.lint.Node & { range: [number, number] }) => {
          const lines = linesOf(context.sourceCode.text, node.range);
          if (lines > MAX_LINES) {
            context.report({
              node,
              message: `This function is ${lines} lines long; split it (at most ${MAX_LINES}).`,
            });
          }
        };
        return {
          FunctionDeclaration: check,
          FunctionExpression: check,
          ArrowFunctionExpression: check,
        };
      },
    },
  },
};

export default plugin;
