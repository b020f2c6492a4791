/**
 * The slice of mvdan-sh (mvdan/sh's Go parser compiled to JS with GopherJS) the explainer uses.
 * Nodes are the Go structs of mvdan.cc/sh/v3/syntax; `syntax.NodeType` names them.
 */
declare module "mvdan-sh" {
  export interface ShPos {
    Offset(): number;
  }
  export interface ShNode {
    Pos(): ShPos;
    End(): ShPos;
    // biome-ignore lint/suspicious/noExplicitAny: Go struct fields, read by node type
    [field: string]: any;
  }
  export interface ShParser {
    Parse(src: string, name: string): ShNode;
  }
  const sh: {
    syntax: {
      NewParser(...options: unknown[]): ShParser;
      NodeType(node: ShNode): string;
      Walk(node: ShNode, visit: (node: ShNode | null) => boolean): void;
      LangBash: unknown;
      Variant(lang: unknown): unknown;
    };
  };
  export default sh;
}
