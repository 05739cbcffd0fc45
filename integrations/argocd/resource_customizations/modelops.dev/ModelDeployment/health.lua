-- Argo CD health check for modelops.dev/ModelDeployment (kstatus conventions).
--   Healthy      Ready=True, written for the current generation
--   Degraded     Stalled=True for the current generation (a spec that cannot work until it is changed), or
--                a canary rolled back (Canary=False, RolledBack: its check, value and threshold)
--   Progressing  no status yet, an older generation observed, being deleted, Reconciling, Ready not True,
--                or a canary in progress (Canary=False, Progressing: its step and measured values)
-- Only Lua 5.1 base functions are used, as in Argo CD's sandboxed gopher-lua VM.

local function find_condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == kind then
      return condition
    end
  end
  return nil
end

-- A condition that carries its own observedGeneration must be about the current generation.
local function is_current(condition, generation)
  return condition.observedGeneration == nil or generation == nil or condition.observedGeneration == generation
end

local function describe(condition, fallback)
  if condition == nil then
    return fallback
  end
  local text = condition.message
  if text == nil or text == "" then
    text = fallback
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason .. ": " .. text
  end
  return text
end

local hs = {}
local generation = obj.metadata.generation

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "ModelDeployment is being deleted"
  return hs
end

if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local stalled = find_condition(conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" and is_current(stalled, generation) then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local ready = find_condition(conditions, "Ready")
local canary = find_condition(conditions, "Canary")
local serving = ready ~= nil and ready.status == "True" and is_current(ready, generation)
if serving and canary ~= nil and canary.status == "False" and is_current(canary, generation) then
  if canary.reason == "RolledBack" then
    hs.status = "Degraded"
    hs.message = "Canary " .. describe(canary, "rolled back")
    return hs
  end
  if canary.reason == "Progressing" then
    hs.status = "Progressing"
    hs.message = "Canary " .. describe(canary, "in progress")
    return hs
  end
end

if serving then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

local reconciling = find_condition(conditions, "Reconciling")
hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" then
  hs.message = describe(reconciling, "Reconciling")
elseif ready ~= nil and not is_current(ready, generation) then
  hs.message = "Waiting for the Ready condition of generation " .. tostring(generation)
elseif ready ~= nil then
  hs.message = describe(ready, "Not ready yet")
else
  hs.message = "Waiting for the Ready condition"
end
return hs
