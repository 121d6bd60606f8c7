package webhook

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// index finds the webhooks that may match an occurrence without looking
// at the others: by tenant first (so one tenant's lookups never touch
// another's webhooks), then by trigger type, then by exact event name, by
// event-name prefix, or as listening to all events, and within each of
// those by the value of a property that a trigger's filter requires
// (FilterEquals or FilterIn), so that an event meets only the webhooks
// whose required value it has. Every list is in ID order, so candidates
// need no sort. An index is never changed once published: changes build
// a new one sharing what they do not touch (indexload.go).
type index struct {
	gen      uint64
	loadedAt time.Time
	byTenant map[string]map[TriggerType]*typeIndex // "" holds the webhooks without a tenant
	byID     map[string]*compiledWebhook
	// stateful holds the webhooks with threshold, anomaly or scheduled
	// triggers, of every tenant, in ID order: the ones Evaluate visits.
	stateful []*compiledWebhook
}

func newIndex() *index {
	return &index{byTenant: make(map[string]map[TriggerType]*typeIndex), byID: make(map[string]*compiledWebhook)}
}

type typeIndex struct {
	exact  map[string]*bucket
	prefix map[string]*bucket // key ends with "."
	all    *bucket
}

// bucket holds the webhooks of one event-name key: those a value of the
// event data must select (by property, then value) and the others.
type bucket struct {
	plain []*compiledWebhook
	eq    map[string]*eqIndex // property → its values
}

// eqIndex holds the webhooks a property's value selects.
type eqIndex struct {
	path    []string
	byValue map[string][]*compiledWebhook // valueKey → webhooks
}

// indexSlot is one list an indexed webhook is in.
type indexSlot struct {
	typ      TriggerType
	kind     byte   // 'a' all, 'e' exact, 'p' prefix
	name     string // the event name or prefix
	property string // "" for the plain list
	path     []string
	value    string // valueKey
}

// slots lists where cw belongs, repeats included.
func slots(cw *compiledWebhook) []indexSlot {
	var out []indexSlot
	for _, t := range cw.triggers {
		prop, path, values := eqFilter(t)
		add := func(kind byte, name string) {
			if prop == "" {
				out = append(out, indexSlot{typ: t.typ, kind: kind, name: name})
				return
			}
			for _, v := range values {
				out = append(out, indexSlot{typ: t.typ, kind: kind, name: name, property: prop, path: path, value: v})
			}
		}
		if len(t.events) == 0 {
			add('a', "")
			continue
		}
		for _, e := range t.events {
			switch {
			case e == "*":
				add('a', "")
			case strings.HasSuffix(e, ".*"):
				add('p', e[:len(e)-1])
			default:
				add('e', e)
			}
		}
	}
	return out
}

// eqFilter returns the property and value keys of the first filter of t
// that only events with one of a few values of a property pass:
// FilterEquals with a scalar value, FilterIn. It returns "" if t has
// none. An event passes such a filter only if its value has one of the
// keys (see valueKey), so the index may offer t to those events only.
func eqFilter(t *compiledTrigger) (string, []string, []string) {
	for i := range t.filters {
		f := &t.filters[i]
		var vals []any
		switch f.op {
		case FilterEquals:
			vals = []any{f.value}
		case FilterIn:
			vals = f.set
		default:
			continue
		}
		keys := make([]string, 0, len(vals))
		for _, v := range vals {
			k, ok := valueKey(v)
			if !ok {
				keys = nil
				break
			}
			keys = append(keys, k)
		}
		if keys != nil {
			return f.property, f.path, keys
		}
	}
	return "", nil, nil
}

// valueKey returns a key that two scalar values share exactly when
// equalValues holds between them (nulls, numbers by value, strings,
// bools), and false for any other value, which equals no scalar.
func valueKey(v any) (string, bool) {
	if isNil(v) {
		return "z", true
	}
	if f, ok := toFloat(v); ok {
		if f == 0 {
			f = 0 // -0 equals 0
		}
		return "n" + strconv.FormatUint(math.Float64bits(f), 16), true
	}
	if s, ok := stringValue(v); ok {
		return "s" + s, true
	}
	if b, ok := v.(bool); ok {
		if b {
			return "t", true
		}
		return "f", true
	}
	return "", false
}

// add adds cw to an index being built, whose lists it may change in
// place: webhooks are added in ID order, as loadIndex reads them.
func (idx *index) add(cw *compiledWebhook) {
	b := builder{idx: idx, inPlace: true}
	b.insert(cw)
}

// builder changes an index: in place while it is built, or else by
// copying each map and list it changes (once per builder), so that the
// index it started from stays as it was for those still reading it.
type builder struct {
	idx     *index
	inPlace bool
	owned   map[any]bool // containers already copied by this builder
}

// fork returns a builder of a copy of idx.
func fork(idx *index) *builder {
	next := *idx
	next.byID = maps.Clone(idx.byID)
	next.byTenant = maps.Clone(idx.byTenant)
	return &builder{idx: &next, owned: map[any]bool{}}
}

func (b *builder) own(key any) bool {
	if b.inPlace || b.owned[key] {
		return true
	}
	b.owned[key] = true
	return false
}

// tenantKey names a tenant's type map in builder.owned (maps cannot
// be keys).
type tenantKey string

// types returns tenant's type map, ready to change.
func (b *builder) types(tenant string) map[TriggerType]*typeIndex {
	m := b.idx.byTenant[tenant]
	switch {
	case m == nil:
		m = make(map[TriggerType]*typeIndex)
		b.mark(tenantKey(tenant))
	case !b.own(tenantKey(tenant)):
		m = maps.Clone(m)
	}
	b.idx.byTenant[tenant] = m
	return m
}

// change replaces the list of slot s in tenant's index with edit's
// result, copying the containers on the way that this builder does not
// own yet.
func (b *builder) change(tenant string, s indexSlot, edit func([]*compiledWebhook) []*compiledWebhook) {
	types := b.types(tenant)
	ti := types[s.typ]
	switch {
	case ti == nil:
		ti = &typeIndex{exact: map[string]*bucket{}, prefix: map[string]*bucket{}}
		b.mark(ti)
	case !b.own(ti):
		c := *ti
		c.exact, c.prefix = maps.Clone(ti.exact), maps.Clone(ti.prefix)
		ti = &c
		b.mark(ti)
	}
	types[s.typ] = ti
	bk := ti.bucketOf(s)
	switch {
	case bk == nil:
		bk = &bucket{eq: map[string]*eqIndex{}}
		b.mark(bk)
	case !b.own(bk):
		c := *bk
		c.eq = maps.Clone(bk.eq)
		bk = &c
		b.mark(bk)
	}
	switch s.kind {
	case 'a':
		ti.all = bk
	case 'e':
		ti.exact[s.name] = bk
	default:
		ti.prefix[s.name] = bk
	}
	if s.property == "" {
		bk.plain = edit(bk.plain)
		return
	}
	eq := bk.eq[s.property]
	switch {
	case eq == nil:
		eq = &eqIndex{path: s.path, byValue: map[string][]*compiledWebhook{}}
		b.mark(eq)
	case !b.own(eq):
		eq = &eqIndex{path: eq.path, byValue: maps.Clone(eq.byValue)}
		b.mark(eq)
	}
	bk.eq[s.property] = eq
	if l := edit(eq.byValue[s.value]); len(l) > 0 {
		eq.byValue[s.value] = l
	} else {
		delete(eq.byValue, s.value)
	}
}

func (b *builder) mark(key any) {
	if !b.inPlace {
		b.owned[key] = true
	}
}

func (ti *typeIndex) bucketOf(s indexSlot) *bucket {
	switch s.kind {
	case 'a':
		return ti.all
	case 'e':
		return ti.exact[s.name]
	}
	return ti.prefix[s.name]
}

// insertSorted returns list with cw in its place by ID, once; a copy
// unless inPlace.
func insertSorted(list []*compiledWebhook, cw *compiledWebhook, inPlace bool) []*compiledWebhook {
	i, found := slices.BinarySearchFunc(list, cw.w.ID, func(x *compiledWebhook, id string) int { return strings.Compare(x.w.ID, id) })
	if found {
		if list[i] == cw {
			return list
		}
		if !inPlace {
			list = slices.Clone(list)
		}
		list[i] = cw
		return list
	}
	if inPlace && i == len(list) {
		return append(list, cw)
	}
	out := make([]*compiledWebhook, 0, len(list)+1)
	return append(append(append(out, list[:i]...), cw), list[i:]...)
}

// removeSorted returns a copy of list without the webhook of ID id.
func removeSorted(list []*compiledWebhook, id string) []*compiledWebhook {
	i, found := slices.BinarySearchFunc(list, id, func(x *compiledWebhook, id string) int { return strings.Compare(x.w.ID, id) })
	if !found {
		return list
	}
	out := make([]*compiledWebhook, 0, len(list)-1)
	return append(append(out, list[:i]...), list[i+1:]...)
}

// insert adds cw, which is not in the index.
func (b *builder) insert(cw *compiledWebhook) {
	b.idx.byID[cw.w.ID] = cw
	b.types(cw.w.TenantID)
	for _, s := range slots(cw) {
		b.change(cw.w.TenantID, s, func(l []*compiledWebhook) []*compiledWebhook { return insertSorted(l, cw, b.inPlace) })
	}
	if slices.ContainsFunc(cw.triggers, func(t *compiledTrigger) bool { return t.typ.Stateful() }) {
		b.idx.stateful = insertSorted(b.idx.stateful, cw, b.inPlace)
	}
}

// remove takes the webhook of ID id out of the index, if it is in it.
func (b *builder) remove(id string) {
	cw, ok := b.idx.byID[id]
	if !ok {
		return
	}
	delete(b.idx.byID, id)
	for _, s := range slots(cw) {
		b.change(cw.w.TenantID, s, func(l []*compiledWebhook) []*compiledWebhook { return removeSorted(l, id) })
	}
	b.idx.stateful = removeSorted(b.idx.stateful, id)
}

// candidates returns the webhooks of the tenant ("" for the webhooks
// without one) that may match, each once, in ID order, whatever the
// event's data. The result must not be changed.
func (idx *index) candidates(tenant string, typ TriggerType, name string) []*compiledWebhook {
	return idx.candidatesFor(tenant, typ, name, nil)
}

// candidatesFor is candidates for an event with the given data: data
// returns it when first needed (nil: offer the webhooks of every value).
// Only webhooks whose indexed filter the data passes are offered, so the
// cost follows the candidates, not the webhooks. The result must not be
// changed.
func (idx *index) candidatesFor(tenant string, typ TriggerType, name string, data func() map[string]any) []*compiledWebhook {
	ti := idx.byTenant[tenant][typ]
	if ti == nil {
		return nil
	}
	var lists [][]*compiledWebhook
	var d map[string]any
	loaded := false
	collect := func(bk *bucket) {
		if bk == nil {
			return
		}
		if len(bk.plain) > 0 {
			lists = append(lists, bk.plain)
		}
		for prop, eq := range bk.eq {
			if data == nil {
				for _, l := range eq.byValue {
					lists = append(lists, l)
				}
				continue
			}
			if !loaded {
				d, loaded = data(), true
			}
			v, ok := lookup(d, prop, eq.path)
			if !ok {
				continue
			}
			if k, ok := valueKey(v); ok && len(eq.byValue[k]) > 0 {
				lists = append(lists, eq.byValue[k])
			}
		}
	}
	collect(ti.all)
	collect(ti.exact[name])
	for i := range len(name) {
		if name[i] == '.' && i+1 < len(name) {
			collect(ti.prefix[name[:i+1]])
		}
	}
	switch len(lists) {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	out := lists[0]
	for _, l := range lists[1:] {
		out = mergeByID(out, l)
	}
	return out
}

// mergeByID merges two lists in ID order into a new one, each webhook
// once.
func mergeByID(a, b []*compiledWebhook) []*compiledWebhook {
	out := make([]*compiledWebhook, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch c := strings.Compare(a[0].w.ID, b[0].w.ID); {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}
