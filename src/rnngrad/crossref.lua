-- Quarto-style cross-references for rnngrad's fallback renderer (rnngrad.render).
--
-- Numbers, in document order, the figures and tables (a Div or Figure whose id starts
-- with fig- or tbl-, in a Div the last paragraph the caption, as in Quarto's div syntax;
-- a table captioned `: caption {#tbl-x}`) and the display equations followed by
-- {#eq-...}; then turns @fig-x, @tbl-x and @eq-x into links ("Figure 1", "Table 2",
-- "Equation 3"; [-@eq-x] gives "3").
-- An unknown label is left as Quarto leaves it, "?@fig-x" in bold.

local KINDS = { fig = "Figure", tbl = "Table", eq = "Equation" }
local numbers, counts = {}, { fig = 0, tbl = 0, eq = 0 }

local function kind_of(id)
  local kind = (id or ""):match("^(%a+)%-.")
  return KINDS[kind] and kind or nil
end

local function number(id)
  local kind = kind_of(id)
  if not kind or numbers[id] then return nil end
  counts[kind] = counts[kind] + 1
  numbers[id] = counts[kind]
  return KINDS[kind] .. "\u{a0}" .. counts[kind] .. ": "
end

local function float_div(div)
  local kind = kind_of(div.identifier)
  local prefix = (kind == "fig" or kind == "tbl") and number(div.identifier)
  if not prefix then return nil end
  local blocks, caption = div.content, pandoc.Inlines({})
  if #blocks > 1 and blocks[#blocks].t == "Para" then
    caption = blocks[#blocks].content
    blocks = pandoc.Blocks({ table.unpack(blocks, 1, #blocks - 1) })
  end
  caption = pandoc.Inlines({ pandoc.Str(prefix) }) .. caption
  if kind == "fig" then
    return pandoc.Figure(blocks, { pandoc.Plain(caption) }, pandoc.Attr(div.identifier))
  end
  blocks:insert(1, pandoc.Para(caption)) -- a table's caption above it, as in Quarto
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, { "table-float" }))
end

local function table_caption(tbl) -- a Markdown table captioned `: caption {#tbl-x}`
  local inl = pandoc.utils.blocks_to_inlines(tbl.caption.long)
  local last = inl[#inl]
  local id = last and last.t == "Str" and last.text:match("^{#(tbl%-[%w_:.-]+)}$")
  local prefix = id and number(id)
  if not prefix then return nil end
  inl:remove(#inl)
  if inl[#inl] and inl[#inl].t == "Space" then inl:remove(#inl) end
  tbl.caption.long = {}
  local caption = pandoc.Para(pandoc.Inlines({ pandoc.Str(prefix) }) .. inl)
  return pandoc.Div({ caption, tbl }, pandoc.Attr(id, { "table-float" }))
end

local function figure(fig)
  local prefix = number(fig.identifier)
  if not prefix then return nil end
  local first = fig.caption.long[1]
  if first and first.content then
    first.content = pandoc.Inlines({ pandoc.Str(prefix) }) .. first.content
  else
    fig.caption.long = { pandoc.Plain({ pandoc.Str(prefix) }) }
  end
  return fig
end

local function equations(block) -- $$ ... $$ {#eq-x}: a numbered display equation
  local out, inl, changed = pandoc.Inlines({}), block.content, false
  local i = 1
  while i <= #inl do
    local el, skip = inl[i], 0
    local nxt = inl[i + 1]
    if nxt and nxt.t == "Space" then nxt, skip = inl[i + 2], 1 end
    local id = nxt and nxt.t == "Str" and nxt.text:match("^{#(eq%-[%w_:.-]+)}$")
    if el.t == "Math" and el.mathtype == "DisplayMath" and id and number(id) then
      local math = pandoc.Math("DisplayMath", el.text .. " \\qquad(" .. numbers[id] .. ")")
      out:insert(pandoc.Span({ math }, pandoc.Attr(id)))
      i, changed = i + 2 + skip, true
    else
      out:insert(el)
      i = i + 1
    end
  end
  if changed then
    block.content = out
    return block
  end
end

local function xref(cite) -- bibliography keys in the same brackets stay for citeproc
  local out, rest = pandoc.Inlines({}), {}
  for _, c in ipairs(cite.citations) do
    local kind = kind_of(c.id)
    if not kind then
      table.insert(rest, c)
    else
      if #out > 0 then out:insert(pandoc.Str(", ")) end
      out:extend(c.prefix)
      if #c.prefix > 0 then out:insert(pandoc.Space()) end
      if numbers[c.id] then
        local text = tostring(numbers[c.id])
        if c.mode ~= "SuppressAuthor" then text = KINDS[kind] .. "\u{a0}" .. text end
        out:insert(pandoc.Link(text, "#" .. c.id))
      else
        io.stderr:write("WARNING: unresolved cross-reference @" .. c.id .. "\n")
        out:insert(pandoc.Strong({ pandoc.Str("?@" .. c.id) }))
      end
      out:extend(c.suffix)
    end
  end
  if #out == 0 then return nil end
  if #rest > 0 then out:extend({ pandoc.Space(), pandoc.Cite({}, rest) }) end
  return out
end

function Pandoc(doc)
  doc = doc:walk({
    traverse = "topdown",
    Div = float_div,
    Figure = figure,
    Table = table_caption,
    Para = equations,
    Plain = equations,
  })
  return doc:walk({ Cite = xref })
end
