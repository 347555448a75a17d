// GraphiQL on the page that served it: the endpoint is this page's own address (same origin, the caller's
// cookies), and the query and variables are kept in the address (q, v: never "query", which the endpoint would
// run) so that a link shares them.
"use strict";

(function () {
  const parameters = new URLSearchParams(window.location.search);
  const endpoint = window.location.origin + window.location.pathname;

  function remember(name, value) {
    if (value) {
      parameters.set(name, value);
    } else {
      parameters.delete(name);
    }
    const search = parameters.toString();
    window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  const fetcher = GraphiQL.createFetcher({ url: endpoint });

  function OneWindowGraphiQL() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: "{\n  viewer { subject kind department window roles }\n}\n",
      query: parameters.get("q") || undefined,
      variables: parameters.get("v") || undefined,
      onEditQuery: function (query) { remember("q", query); },
      onEditVariables: function (variables) { remember("v", variables); },
      defaultEditorToolsVisibility: true,
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(OneWindowGraphiQL));
})();
