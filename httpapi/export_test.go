package httpapi

// Routes returns the method and pattern (below the prefix) of every
// route the Handler serves, from its route table.
func Routes() [][2]string {
	out := make([][2]string, 0, len(routeTable))
	for _, rt := range routeTable {
		out = append(out, [2]string{rt.method, rt.path})
	}
	return out
}

// Pointer exposes the conversion of field paths to JSON Pointers.
var Pointer = pointer
