// GraphiQL from this server's own copies (no CDN), with the explorer plugin. The headers editor
// starts with the dashboard's token when this tab signed in to it (sessionStorage, never a URL
// or a cookie); `?query=` prefills the editor, so a query can be linked (never a token).
(function () {
  "use strict";
  var token = window.sessionStorage.getItem("wareports.token");
  var params = new URLSearchParams(window.location.search);
  var headers = token
    ? JSON.stringify({ Authorization: "Bearer " + token }, null, 2)
    : JSON.stringify({ Authorization: "Bearer <your token>" }, null, 2);
  var fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultEditorToolsVisibility: true,
      defaultHeaders: headers,
      defaultQuery: params.get("query") || "{\n  agents {\n    email\n  }\n}\n",
      shouldPersistHeaders: false,
      // Its tabs (and their headers, the token among them) live as long as the tab, never in
      // localStorage: the token is kept nowhere the dashboard does not keep it.
      storage: window.sessionStorage,
    })
  );
})();
